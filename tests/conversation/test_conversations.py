"""Conversations on real Rasa: forms, cancel, ordering, hand-off, fallback, NLU outages."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestServer

from bot.runtime import RUNTIME
from channels.wechat.fake_api import FakeWeChatAPI
from tests.conversation.conftest import Chat, RasaProxy, make_gateway
from tests.harness import Harness


async def test_repair_form_asks_for_what_is_missing(bot: Harness) -> None:
    chat = Chat(bot, "oForm")
    first = await chat.say("my XK-8800 is not cooling")
    assert "address" in first[0].lower()  # model and fault came with the message
    assert "when would you like" in (await chat.say("88 Zhongshan Road, Nanjing"))[0].lower()
    done = (await chat.say("tomorrow morning"))[0]
    assert "XK-8800" in done and "88 Zhongshan Road, Nanjing" in done and "tomorrow morning" in done
    ticket = await bot.runtime.store.db["tickets"].find_one({"customer": "wechat:demo:oForm"})
    assert ticket is not None and ticket["device_model"] == "XK-8800" and ticket["status"] == "new"
    status = (await chat.say("where is my repair?"))[0]
    assert ticket["number"] in status


async def test_form_in_chinese_and_cancel(bot: Harness) -> None:
    chat = Chat(bot, "oCancel")
    ask = (await chat.say("我的XK-8800坏了"))[0]
    assert "地址" in ask or "问题" in ask  # asks for the fault or the address, in Chinese
    assert "取消" in (await chat.say("算了"))[0]
    state = await bot.runtime.states.get("wechat:demo:oCancel")
    assert state is not None and state.form is None
    assert await bot.runtime.store.db["tickets"].count_documents({"customer": "wechat:demo:oCancel"}) == 0


async def test_messages_of_one_conversation_are_handled_in_order(bot: Harness) -> None:
    # Sent back to back without waiting; two workers compete for them.
    chat = Chat(bot, "oOrder")
    before = 0
    for text in ("my XK-8800 is not cooling", "12 Lake Street, Hangzhou", "friday afternoon"):
        resp = await bot.say("oOrder", text)
        assert resp.status == 200
    replies = await chat.replies(before, 3, timeout_s=30)
    assert len(replies) == 3
    ticket = await bot.runtime.store.db["tickets"].find_one({"customer": "wechat:demo:oOrder"})
    assert ticket is not None
    assert (ticket["address"], ticket["preferred_time"]) == ("12 Lake Street, Hangzhou", "friday afternoon")


async def test_handoff_bot_silent_while_agent_owns_it(bot: Harness) -> None:
    chat = Chat(bot, "oHuman")
    assert "转接" in (await chat.say("转人工"))[0]
    handoff = bot.runtime.handoff
    waiting = await handoff.waiting()
    assert [w["conversation"] for w in waiting] == ["wechat:demo:oHuman"]
    # Waiting: told once that a person is coming and how long it takes, then kept for the agent.
    notice = await chat.say("还在吗？")
    assert "前面还有 0 位" in notice[0] and "预计等待约 4 分钟" in notice[0]
    assert await chat.say("还在吗？", expect=0) == []
    before = len(bot.fake.sent_to("oHuman"))
    await handoff.claim("wechat:demo:oHuman", "alice")
    assert "alice" in (await chat.replies(before, 1))[0]
    assert await chat.say("我的XK-8800坏了", expect=0) == []  # the agent has it
    before = len(bot.fake.sent_to("oHuman"))
    await handoff.agent_reply("wechat:demo:oHuman", "alice", "您好，我是客服小李，马上为您处理。")
    assert (await chat.replies(before, 1)) == ["您好，我是客服小李，马上为您处理。"]
    before = len(bot.fake.sent_to("oHuman"))
    await handoff.hand_back("wechat:demo:oHuman", "alice")
    assert "智能客服" in (await chat.replies(before, 1))[0]
    assert (await chat.say("你好"))  # the bot answers again
    stored = await bot.runtime.store.messages.count_documents({"sender": "oHuman", "direction": "in"})
    assert stored == 5


async def test_keyboard_mashing_is_out_of_scope_then_a_human_is_offered(bot: Harness) -> None:
    chat = Chat(bot, "oLost")
    first = (await chat.say("asdkjh qwpoeiru zmxncbv"))[0]
    second = (await chat.say("lkjqwe poiuzx mnbv"))[0]
    assert "agent" not in first and "agent" in second
    assert await bot.runtime.store.db["tickets"].count_documents({"customer": "wechat:demo:oLost"}) == 0


async def test_out_of_scope_gets_polite_answer_then_offer(bot: Harness) -> None:
    chat = Chat(bot, "oChat")
    first = (await chat.say("今天天气怎么样"))[0]
    assert "人工" not in first
    second = (await chat.say("给我讲个笑话吧"))[0]
    assert "人工" in second


async def test_rasa_down_briefly_message_waits_quietly_then_answered_when_back(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa_url: str
) -> None:
    proxy = RasaProxy(rasa_url)
    url = await proxy.up()
    await proxy.down()
    bot = await make_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, [url], claim_idle_ms=600)
    chat = Chat(bot, "oWait")
    assert await chat.say("where is my repair?", expect=0) == []  # a short wait: no "busy" reply
    await proxy.up()
    answer = await chat.replies(0, 1, timeout_s=20)
    assert len(answer) == 1 and "ticket" in answer[0].lower()
    await proxy.down()
    assert bot.client.app[RUNTIME].nlu is not None


async def test_handoff_http_api(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> None:
    """The console's API, without NLU: the keyword shortcut still reaches a person."""
    from bot.app import build_app
    from bot.config import settings_from_mapping
    from tests.harness import gateway_config

    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    cfg["api"] = {"keys": [{"key": "console-key", "scopes": ["conversations:read", "conversations:write"]}, {"key": "ro", "scopes": ["conversations:read"]}]}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    bot = Harness(client=client, fake=fake_wechat[0])
    chat = Chat(bot, "oApi")
    assert "转接" in (await chat.say("人工"))[0]
    auth = {"Authorization": "Bearer console-key"}
    assert (await client.get("/api/conversations/waiting")).status == 401
    assert (await client.get("/api/conversations/waiting", headers={"X-API-Key": "wrong"})).status == 401
    waiting = await (await client.get("/api/conversations/waiting", headers=auth)).json()
    assert [w["conversation"] for w in waiting["waiting"]] == ["wechat:demo:oApi"]
    cid = "wechat:demo:oApi"
    assert (await client.post(f"/api/conversations/{cid}/claim", json={"agent": "bob"}, headers={"X-API-Key": "ro"})).status == 403
    assert (await client.post(f"/api/conversations/{cid}/claim", data="{junk", headers=auth)).status == 400
    assert (await client.post(f"/api/conversations/{cid}/reply", json={"agent": "bob", "text": "hi"}, headers=auth)).status == 409
    resp = await client.post(f"/api/conversations/{cid}/claim", json={"agent": "bob"}, headers=auth)
    assert resp.status == 200 and (await resp.json())["owner"] == "agent:bob"
    assert (await client.post(f"/api/conversations/{cid}/claim", json={"agent": "eve"}, headers=auth)).status == 409
    before = len(bot.fake.sent_to("oApi"))
    resp = await client.post(f"/api/conversations/{cid}/reply", json={"agent": "bob", "text": "我来帮您看看"}, headers=auth)
    assert resp.status == 202
    assert "我来帮您看看" in await chat.replies(before, 2)
    detail = await (await client.get(f"/api/conversations/{cid}", headers=auth)).json()
    assert detail["state"]["owner"] == "agent:bob" and detail["messages"][0]["text"] == "人工"
    assert (await client.get("/api/conversations/nope:x", headers=auth)).status == 404
    assert (await client.post(f"/api/conversations/{cid}/handback", json={"agent": "bob"}, headers=auth)).status == 200
    assert (await client.post("/api/conversations/nope:x/claim", json={"agent": "bob"}, headers=auth)).status == 404
