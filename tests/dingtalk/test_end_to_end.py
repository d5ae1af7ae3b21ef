"""Robot message in -> reply out, through the real gateway, Redis, MongoDB and a fake DingTalk."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

from bot.messages import MediaRef
from channels.dingtalk.channel import DingTalkChannel
from channels.dingtalk.simulator import SimulateOptions, robot_message, signed_headers, simulate
from channels.dingtalk.todo import create_todo
from tests.dingtalk.conftest import ROBOT, DingHarness


async def test_text_in_reply_via_session_webhook(ding: DingHarness) -> None:
    resp = await ding.say("staff1", "你好，打印机卡纸了")
    assert resp.status == 200
    sent = await ding.fake.wait_sent(1)
    assert sent[0]["via"] == "webhook" and sent[0]["conversationId"] == "cidstaff1"
    assert "打印机卡纸了" in sent[0]["text"]
    assert ding.fake.token_calls == 0  # the webhook needs no token
    store = ding.runtime.store
    inbound = await store.messages.find_one({"direction": "in", "sender": "staff1"})
    assert inbound is not None and inbound["conversation"] == "dingtalk:robot:cidstaff1"


async def test_expired_webhook_uses_batch_send(ding: DingHarness) -> None:
    resp = await ding.say("staff2", "hello", webhook_valid_s=-10)
    assert resp.status == 200
    sent = await ding.fake.wait_sent(1)
    assert sent[0]["via"] == "batchSend" and sent[0]["userIds"] == ["staff2"]
    assert sent[0]["robotCode"] == ROBOT["robot_code"] and sent[0]["msgKey"] == "sampleText"
    assert "hello" in sent[0]["text"]
    assert ding.fake.token_calls == 1


async def test_expired_webhook_in_group_uses_group_send(ding: DingHarness) -> None:
    await ding.say("staff3", "group hello", group=True, conversation_id="cidGroup9", webhook_valid_s=-1)
    sent = await ding.fake.wait_sent(1)
    assert sent[0]["via"] == "group" and sent[0]["conversationId"] == "cidGroup9"


async def test_refused_webhook_falls_back_to_api(ding: DingHarness) -> None:
    ding.fake.expired_sessions.add("cidstaff4.s1")
    await ding.say("staff4", "still there?")
    sent = await ding.fake.wait_sent(1)
    assert sent[0]["via"] == "batchSend"


async def test_webhook_5xx_is_retried_not_duplicated(ding: DingHarness) -> None:
    ding.fake.fail_next(2, status=502)
    await ding.say("staff5", "retry me")
    sent = await ding.fake.wait_sent(1)
    await asyncio.sleep(0.5)
    assert len(ding.fake.sent) == 1 and sent[0]["via"] == "webhook"


async def test_revoked_token_is_refreshed_once(ding: DingHarness) -> None:
    await ding.say("staff6", "one", webhook_valid_s=-1)
    await ding.fake.wait_sent(1)
    ding.fake.revoke_tokens()
    await ding.say("staff6", "two", webhook_valid_s=-1)
    sent = await ding.fake.wait_sent(2)
    assert [s["via"] for s in sent] == ["batchSend", "batchSend"]
    assert ding.fake.token_calls == 2


async def test_forged_sign_is_403_and_nothing_queued(ding_web: DingHarness) -> None:
    rt = ding_web.runtime
    data = robot_message("evil", text="伪造", session_webhook=ding_web.webhook("cidevil"))
    headers = signed_headers("not-the-secret")
    resp = await ding_web.post(data, headers=headers)
    assert resp.status == 403
    stale = signed_headers(ROBOT["app_secret"], timestamp=str(int(time.time() * 1000) - 3_700_000))
    assert (await ding_web.post(data, headers=stale)).status == 403
    assert (await ding_web.post(data, headers={"Content-Type": "application/json"})).status == 403
    assert await rt.redis.xlen(rt.settings.pipeline.inbound_stream) == 0
    assert await rt.redis.keys("kefu:dedup:*") == []
    assert await rt.store.messages.count_documents({}) == 0


async def test_duplicate_delivery_is_queued_once(ding_web: DingHarness) -> None:
    rt = ding_web.runtime
    data = robot_message("dup", text="在吗", msg_id="msgDUP1")
    responses = await asyncio.gather(*(ding_web.post(data) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    assert await rt.redis.xlen(rt.settings.pipeline.inbound_stream) == 1


async def test_malformed_json_is_400(ding_web: DingHarness) -> None:
    resp = await ding_web.client.post("/dingtalk/robot", data=b"{not json", headers=signed_headers(ROBOT["app_secret"]))
    assert resp.status == 400


async def test_unknown_kind_is_accepted_not_answered(ding: DingHarness) -> None:
    resp = await ding.post(robot_message("staff7", msgtype="interactiveCard", content={"cardData": "{}"}, session_webhook=ding.webhook("cidstaff7")))
    assert resp.status == 200
    await asyncio.sleep(0.8)
    assert ding.fake.sent == []
    doc = await ding.runtime.store.messages.find_one({"sender": "staff7"})
    assert doc is not None and doc["kind"] == "unknown"


async def test_audio_is_downloadable_and_keeps_recognition(ding: DingHarness) -> None:
    code = ding.fake.add_file(b"#!AMR\n fake audio")
    data = robot_message("staff8", msgtype="audio", content={"downloadCode": code, "duration": 2000, "recognition": "我要报修"}, session_webhook=ding.webhook("cidstaff8"))
    assert (await ding.post(data)).status == 200
    await ding.fake.wait_sent(1)
    doc = await ding.runtime.store.messages.find_one({"sender": "staff8"})
    assert doc is not None and doc["kind"] == "voice" and doc["media"]["recognition"] == "我要报修"
    channel = ding.runtime.channel("dingtalk", "robot")
    assert isinstance(channel, DingTalkChannel)
    assert await channel.fetch_media(MediaRef(media_id=code)) == b"#!AMR\n fake audio"


async def test_create_todo(ding: DingHarness) -> None:
    channel = ding.runtime.channel("dingtalk", "robot")
    assert isinstance(channel, DingTalkChannel)
    due = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    task = await create_todo(channel.client, "union-dispatch", "上门维修 XK-8800", description="朝阳区…", due=due, executor_ids=["union-eng-1"], source_id="ticket-42")
    assert task.task_id.startswith("task-")
    todo = ding.fake.todos[0]
    assert todo["unionId"] == "union-dispatch" and todo["operatorId"] == "union-dispatch"
    assert todo["executorIds"] == ["union-eng-1"] and todo["dueTime"] == int(due.timestamp() * 1000)
    assert todo["sourceId"] == "ticket-42" and todo["subject"] == "上门维修 XK-8800"


async def test_simulator_round_trip(ding: DingHarness) -> None:
    account = {**ROBOT, "api_base_url": ding.fake_url}
    replies = await simulate(ding.client.session, str(ding.client.make_url("")), account, SimulateOptions(sender="simuser", text="hello sim", wait_s=5, settle_s=0.1))
    assert len(replies) == 1 and "hello sim" in replies[0]


async def test_stream_account_rejects_http(ding: DingHarness) -> None:
    # The robot account is http; an unknown account is 404.
    resp = await ding.client.post("/dingtalk/nope", data=json.dumps({}).encode(), headers=signed_headers("x"))
    assert resp.status == 404
