"""Dead letters in the console: listed with their reason, retried or discarded once;
replies go back to the outbox, customers' messages back to the inbound queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import voice_xml
from tests.console.conftest import ConsoleRig, make_rig, stored
from tests.console.test_inbox import CID, ask_for_a_person
from tests.harness import next_msg_id
from tests.speech.conftest import Clips, clips, model_path  # noqa: F401  (session fixtures)


async def dead_reply(rig: ConsoleRig, text: str) -> str:
    rig.harness.fake.fail_next(1, errcode=40003)  # invalid openid: permanent, no retry
    await rig.harness.runtime.handoff.agent_reply(CID, "alice", text)
    for _ in range(200):
        rows = await rig.harness.runtime.store.dead_letters_recent()
        if rows:
            return str(rows[0]["_id"])
        await asyncio.sleep(0.02)
    raise AssertionError("no dead letter")


async def test_retry_and_discard(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    await rig.harness.fake.wait_sent(2)
    record = await dead_reply(rig, "请稍等，我查一下")
    page = await (await alice.get("/admin/outbox")).text()
    assert "40003" in page and CID in page
    assert (await alice.post(f"/admin/outbox/{record}/retry")).status == 303
    sent = await rig.harness.fake.wait_sent(3)
    assert sent[-1]["text"]["content"] == "请稍等，我查一下"
    assert (await alice.post(f"/admin/outbox/{record}/retry", headers={"Referer": rig.base + "/admin/outbox"})).status == 303
    await asyncio.sleep(0.3)
    assert len(rig.harness.fake.sent_to("oInbox")) == 3  # the second retry found nothing to send
    assert "该记录已被处理" in await (await alice.get("/admin/outbox")).text()

    record = await dead_reply(rig, "这条不用再发了")
    assert (await alice.post(f"/admin/outbox/{record}/discard")).status == 303
    assert await rig.harness.runtime.store.dead_letters_recent() == []
    actions = [e.action for e in await rig.console.audit.recent()]
    assert actions[:2] == ["outbox.discard", "outbox.retry"]


MEDIA_GET = "/cgi-bin/media/get"


@pytest.fixture
async def speech_rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, model_path: str) -> AsyncIterator[ConsoleRig]:  # noqa: F811
    r = await make_rig(
        aiohttp_client, fake_wechat, redis_url, mongo_url,
        speech={"enabled": True, "engine": "faster", "model_path": model_path, "low_confidence": 0.0},
        pipeline={"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 4, "max_inbound_attempts": 2},
    )
    yield r
    for http in r.sessions:
        await http.close()


async def dead_inbound(rig: ConsoleRig, query: dict[str, Any]) -> dict[str, Any]:
    for _ in range(1000):
        found = await rig.harness.runtime.store.dead_letters.find_one({"kind": "inbound", **query})
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.02)
    raise AssertionError("no inbound dead letter")


async def test_a_customer_message_given_up_on_is_retried_once_its_cause_is_gone(speech_rig: ConsoleRig, clips: Clips) -> None:  # noqa: F811
    rig, fake = speech_rig, speech_rig.harness.fake
    alice = await rig.person("alice")
    fake.fail_next(100, path=MEDIA_GET, status=500)  # WeChat's media API is down: the note cannot be heard
    media_id = fake.add_media(clips.read("en_model.amr"))
    assert (await rig.harness.post_xml(voice_xml("oDeaf", media_id, next_msg_id()))).status == 200
    dead = await dead_inbound(rig, {"payload": {"$regex": media_id}})
    page = await (await alice.get("/admin/outbox")).text()
    assert f'/admin/outbox/{dead["_id"].replace(":", "%3A")}/retry' in page  # offered, not only discard

    assert (await alice.post(f"/admin/outbox/{dead['_id']}/retry", csrf=False)).status == 403  # no token: nothing done
    assert await rig.harness.runtime.store.find_dead_letter(dead["_id"]) is not None
    sent = len(fake.sent_to("oDeaf"))
    fake.clear_failures()  # the platform is back
    resp = await alice.post(f"/admin/outbox/{dead['_id']}/retry", headers={"Referer": rig.base + "/admin/outbox"})
    assert resp.status == 303
    assert "客户消息已重新交给机器人处理" in await (await alice.get("/admin/outbox")).text()
    assert await rig.harness.runtime.store.find_dead_letter(dead["_id"]) is None
    for _ in range(1200):  # handled afresh (Whisper included): the bot answers this time
        if len(fake.sent_to("oDeaf")) > sent:
            break
        await asyncio.sleep(0.05)
    assert len(fake.sent_to("oDeaf")) == sent + 1
    doc = await stored(rig, {"sender": "oDeaf", "kind": "voice", "transcript.source": "whisper"})
    assert "air conditioner" in doc["transcript"]["text"].lower()
    entry = (await rig.console.audit.recent())[0]
    assert entry.action == "outbox.retry" and entry.target == dead["_id"] and entry.actor == "alice"

    # Something that is no message at all is only discarded.
    await rig.harness.runtime.queue.redis.xadd(rig.harness.runtime.settings.pipeline.inbound_stream, {"m": b"{not a message"})
    junk = await dead_inbound(rig, {"payload": "{not a message"})
    assert f'/admin/outbox/{junk["_id"]}/retry' not in await (await alice.get("/admin/outbox")).text()
    refused = await alice.post(f"/admin/outbox/{junk['_id']}/retry", headers={"Referer": rig.base + "/admin/outbox"})
    assert refused.status == 303 and "无法重试，只能丢弃" in await (await alice.get("/admin/outbox")).text()
    assert await rig.harness.runtime.store.find_dead_letter(junk["_id"]) is not None
    assert (await alice.post(f"/admin/outbox/{junk['_id']}/discard")).status == 303
    assert await rig.harness.runtime.store.find_dead_letter(junk["_id"]) is None
