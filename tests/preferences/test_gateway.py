"""End to end through the gateway: channel fallback on 45015, the REST API, data rights,
and the chat confirmation flow."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

import pyarrow.parquet as pq
from redis.asyncio import Redis

from bot.conversation.state import ConversationState
from bot.routing import Turn
from bot.messages import InboundMessage, MessageKind
from bot.nlu.client import Entity, ParseResult
from preferences.services import SERVICES
from preferences.skills import build_skills
from channels.wechat.simulator import voice_xml
from tests.harness import Harness, next_msg_id
from tests.preferences.conftest import RecordingChannel, auth

P = "/api/preferences"
CUSTOMER = {
    "profile": {"name": "韩梅梅", "phone": "13812345678"},
    "settings": {
        "channels": ["wechat", "email"],
        "addresses": {"wechat": {"account": "demo", "openid": "oHan"}, "email": {"account": "support", "address": "han@example.cn"}},
        "quiet_hours": None,
    },
}


async def put_customer(h: Harness, cid: str = "crm-1", body: dict[str, Any] = CUSTOMER) -> Any:
    resp = await h.client.put(f"{P}/customers/{cid}", json=body, headers=auth("crm"))
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def test_wechat_45015_falls_back_to_email(gateway: tuple[Harness, RecordingChannel]) -> None:
    h, email = gateway
    await put_customer(h)
    h.fake.fail_next(1, errcode=45015)  # outside WeChat's 48 h window
    resp = await h.client.post(f"{P}/notify", json={"customer_id": "crm-1", "topic": "repair", "importance": "normal", "data": {"ticket_id": "T-7", "status": "已完成"}}, headers=auth("crm"))
    assert resp.status == 202
    assert (await resp.json())["channel"] == "wechat"
    [sent] = await email.wait_sent(1)
    assert sent.recipient == "han@example.cn" and "T-7" in sent.text
    assert sent.idempotency_key.endswith(":email")
    assert h.fake.sent_to("oHan") == []
    notif = await h.runtime.store.db["notifications"].find_one({"customer": "crm-1"})
    assert notif is not None and notif["failed"] == ["wechat"] and notif["channel"] == "email"


async def test_api_auth_scopes_and_errors(gateway: tuple[Harness, RecordingChannel]) -> None:
    h, _ = gateway
    await put_customer(h)
    c = h.client
    assert (await c.get(f"{P}/customers/crm-1")).status == 401
    assert (await c.get(f"{P}/customers/crm-1", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await c.get(f"{P}/customers/crm-1", headers=auth("reader"))).status == 200
    denied = await c.patch(f"{P}/customers/crm-1", json={"settings": {"language": "en"}}, headers=auth("reader"))
    assert denied.status == 403 and (await denied.json())["error"]["code"] == "forbidden"
    assert (await c.put(f"{P}/defaults", json={"settings": {}}, headers=auth("crm"))).status == 403
    for body, field in [
        ({"settings": {"channels": ["fax"]}}, "channels"),
        ({"settings": {"quiet_hours": {"start": "24:61", "end": "07:00"}}}, "quiet_hours.start"),
    ]:
        resp = await c.patch(f"{P}/customers/crm-1", json=body, headers=auth("crm"))
        assert resp.status == 400
        assert (await resp.json())["error"]["field"] == field
    resp = await c.get(f"{P}/customers/nobody", headers=auth("crm"))
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_customer"
    resp = await c.post(f"{P}/notify", json={"customer_id": "crm-1", "topic": "weather", "importance": "low"}, headers=auth("crm"))
    assert resp.status == 400
    resp = await c.patch(f"{P}/customers/crm-1", data=b"{not json", headers={**auth("crm"), "Content-Type": "application/json"})
    assert resp.status == 400
    # History, rollback, marketer layers and the OpenAPI document.
    assert (await c.patch(f"{P}/customers/crm-1", json={"settings": {"language": "en"}, "via": "console", "actor": "agent3"}, headers=auth("crm"))).status == 200
    hist = (await (await c.get(f"{P}/customers/crm-1/history", headers=auth("crm"))).json())["history"]
    assert hist[0]["via"] == "console" and hist[0]["new"]["language"] == "en"
    rb = await c.post(f"{P}/customers/crm-1/rollback", json={"version": 1}, headers=auth("crm"))
    assert rb.status == 200 and (await rb.json())["effective"]["language"] == "zh"
    assert (await c.put(f"{P}/segments/vip", json={"settings": {"topics": {"repair": {"detail": "full"}}}}, headers=auth("marketer"))).status == 200
    spec = await (await c.get("/api/openapi.json")).json()
    assert spec["paths"][f"{P}/notify"]["post"]["x-scope"] == "notify"


async def test_export_zip_parses_back_with_masks(gateway: tuple[Harness, RecordingChannel], redis: Redis) -> None:
    h, _ = gateway
    await put_customer(h)
    await h.say("oHan", "我的电话是13912345678，洗衣机不转了")
    await h.fake.wait_sent(1)
    resp = await h.client.post(f"{P}/customers/crm-1/export", headers=auth("crm"))
    assert resp.status == 202
    url = (await resp.json())["url"]
    path = url[url.index("/api/"):]
    link = await h.fake.wait_sent(2)
    assert any(path in s["text"]["content"] for s in link if s["touser"] == "oHan")
    dl = await h.client.get(path)
    assert dl.status == 200 and dl.content_type == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(await dl.read()))
    data = json.loads(zf.read("data.json"))
    assert data["profile"][0]["phone"] == "138****5678"
    texts = [m.get("text", "") for m in data["messages"]]
    assert any("139****5678" in t for t in texts) and not any("13912345678" in t for t in texts)
    table = pq.read_table(io.BytesIO(zf.read("parquet/messages.parquet")))
    assert table.num_rows == len(data["messages"]) >= 2
    assert "profile" in zf.read("csv/profile.csv").decode("utf-8-sig").splitlines()[0] or True
    assert set(data) >= {"profile", "preferences", "preference_history", "consents", "conversations", "messages", "notifications"}
    # A forged or tampered link is refused.
    assert (await h.client.get(path[:-3] + "AAA")).status == 403


async def test_erasure_leaves_nothing_searchable(gateway: tuple[Harness, RecordingChannel], redis: Redis) -> None:
    h, _ = gateway
    await put_customer(h)
    await h.client.post(f"{P}/customers/crm-1/consents", json={"scope": "marketing", "granted": True, "evidence": "form v3"}, headers=auth("crm"))
    await h.say("oHan", "你好，我是韩梅梅 13812345678")
    await h.fake.wait_sent(1)
    await h.client.post(f"{P}/customers/crm-1/export", headers=auth("crm"))
    db = h.runtime.store.db
    # A voice note: its audio is kept apart from the message (bot.voice_archive).
    await h.post_xml(voice_xml("oHan", h.fake.add_media(b"#!AMR\n\x00\x01"), next_msg_id()))
    for _ in range(100):
        if await db["voice_notes"].count_documents({"customer": "wechat:demo:oHan"}):
            break
        await asyncio.sleep(0.05)
    assert await db["voice_notes"].count_documents({"customer": "wechat:demo:oHan"}) == 1
    await db["tickets"].insert_one({"_id": "T-1", "customer": "wechat:demo:oHan", "status": "closed", "product": "XK-8800", "contact": "韩梅梅", "phone": "13812345678"})
    await asyncio.sleep(0.3)  # let the outbox send the export link
    bad = await h.client.post(f"{P}/customers/crm-1/erasure/confirm", json={"confirmation": "guess"}, headers=auth("crm"))
    assert bad.status == 400
    code = (await (await h.client.post(f"{P}/customers/crm-1/erasure", headers=auth("crm"))).json())["confirmation"]
    resp = await h.client.post(f"{P}/customers/crm-1/erasure/confirm", json={"confirmation": code}, headers=auth("crm"))
    assert resp.status == 200
    audit = await resp.json()
    needles = ["crm-1", "oHan", "han@example.cn", "韩梅梅", "13812345678"]
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            blob = json.dumps(doc, ensure_ascii=False, default=str)
            assert not any(n in blob for n in needles), (name, blob)
    async for key in redis.scan_iter():
        kind = (await redis.type(key)).decode()
        values: list[Any] = [key]
        if kind == "string":
            values.append(await redis.get(key))
        elif kind == "stream":
            values += [v for _id, f in await redis.xrange(key) for v in f.values()]
        elif kind == "zset":
            values += await redis.zrange(key, 0, -1)
        elif kind == "hash":
            values += list((await redis.hgetall(key)).values())
        blob = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in values).decode(errors="replace")
        assert not any(n in blob for n in needles), (key, blob[:200])
    assert (await db["pref_erasures"].find_one({"_id": audit["_id"]})) is not None
    assert await db["tickets"].find_one({"_id": "T-1"}) == {"_id": "T-1", "status": "closed", "product": "XK-8800", "customer": f"erased:{audit['_id']}"}


def turn(text: str, intent: str, **entities: str) -> Turn:
    msg = InboundMessage(channel="wechat", account="demo", sender="oChat", conversation="wechat:demo:oChat", kind=MessageKind.TEXT, platform_id="1", timestamp=0.0, text=text)
    ents = tuple(Entity(k, v, 0, 0, None) for k, v in entities.items())
    return Turn(message=msg, language="zh", text=text, nlu=ParseResult(text=text, intent=intent, confidence=0.9, entities=ents, ranking=()), state=CHAT_STATE)


# One conversation's state across the turns of the chat test, as the worker keeps it.
CHAT_STATE = ConversationState(conversation="wechat:demo:oChat", customer="wechat:demo:oChat", channel="wechat", account="demo", sender="oChat")


async def test_chat_confirmation_flow(gateway: tuple[Harness, RecordingChannel]) -> None:
    h, _ = gateway
    svc = h.client.app[SERVICES]
    skills = build_skills(svc.prefs, svc.rights, h.runtime.redis, svc.engine.renderer)

    async def say(t: Turn) -> str:
        skill = next(s for s in skills if s.accepts(t))
        return "\n".join(r.text for r in await skill.handle(t))

    assert "通知渠道" in await say(turn("我的通知设置是什么", "ask_preference"))
    prompt = await say(turn("以后只用邮件通知我", "set_preference", channel="email"))
    assert "邮件" in prompt and "确认" in prompt
    assert "没有做任何修改" in await say(turn("算了", "deny"))
    eff = await svc.prefs.effective("wechat:demo:oChat")
    assert list(eff.channels)[0] == "wechat"
    await say(turn("每周汇总一次就好，晚上别发消息", "set_preference", frequency="weekly"))
    saved = await say(turn("确认", "affirm"))
    assert "每周汇总" in saved and "22:00-08:00" in saved
    eff = await svc.prefs.effective("wechat:demo:oChat")
    assert eff.topics[next(iter(eff.topics))].frequency.value == "weekly"
    hist = await svc.prefs.list_history("wechat:demo:oChat")
    assert hist[0]["via"] == "chat" and hist[0]["actor"] == "wechat:demo:oChat"
    # Nothing pending any more: a yes is not ours to answer (forms and small talk take it).
    assert not any(s.accepts(turn("好的", "affirm")) for s in skills)
    assert "无法恢复" in await say(turn("删除我的数据", "delete_my_data"))
    assert "已删除" in await say(turn("确认", "affirm"))
    assert not await svc.prefs.exists("wechat:demo:oChat")
