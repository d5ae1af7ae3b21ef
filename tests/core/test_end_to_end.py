"""Text in -> customer-service reply out, through real Redis, MongoDB and HTTP."""

from __future__ import annotations

import asyncio

from tests.harness import PLAIN_ACCOUNT, Harness, next_msg_id
from channels.wechat.simulator import event_xml


async def test_text_in_reply_out_safe_mode(gateway: Harness) -> None:
    resp = await gateway.say("oUser1", "你好，我的空调坏了")
    assert resp.status == 200
    assert await resp.text() == "success"
    sent = await gateway.fake.wait_sent(1)
    assert sent[0]["touser"] == "oUser1"
    assert sent[0]["msgtype"] == "text"
    assert "你好，我的空调坏了" in sent[0]["text"]["content"]
    # Stored: the inbound message, the conversation and the outbound reply, marked sent.
    store = gateway.runtime.store
    for _ in range(50):
        out = await store.messages.find_one({"direction": "out", "recipient": "oUser1"})
        if out and out["status"] == "sent":
            break
        await asyncio.sleep(0.05)
    assert out is not None and out["status"] == "sent"
    inbound = await store.messages.find_one({"direction": "in", "sender": "oUser1"})
    assert inbound is not None and inbound["text"] == "你好，我的空调坏了"
    conv = await store.conversations.find_one({"_id": "wechat:demo:oUser1"})
    assert conv is not None and conv["customer"] == "wechat:demo:oUser1"


async def test_plaintext_mode_english_reply(gateway: Harness) -> None:
    resp = await gateway.say("oUser2", "hello there", account=PLAIN_ACCOUNT)
    assert resp.status == 200
    sent = await gateway.fake.wait_sent(1)
    assert sent[0]["touser"] == "oUser2"
    assert "We received your message" in sent[0]["text"]["content"]


async def test_subscribe_event_gets_welcome(gateway: Harness) -> None:
    resp = await gateway.post_xml(event_xml("oNewFollower", "subscribe"))
    assert resp.status == 200
    sent = await gateway.fake.wait_sent(1)
    assert sent[0]["touser"] == "oNewFollower"
    assert "欢迎" in sent[0]["text"]["content"]


async def test_three_concurrent_deliveries_one_reply(gateway: Harness) -> None:
    msg_id = next_msg_id()
    responses = await asyncio.gather(*(gateway.say("oRetry", "在吗", msg_id) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]
    await gateway.fake.wait_sent(1)
    await asyncio.sleep(1.0)  # room for a wrong second reply to show up
    assert len(gateway.fake.sent_to("oRetry")) == 1
    assert await gateway.runtime.store.messages.count_documents({"direction": "in", "sender": "oRetry"}) == 1


async def test_retry_after_reply_is_not_answered_again(gateway: Harness) -> None:
    msg_id = next_msg_id()
    await gateway.say("oLate", "hello", msg_id)
    await gateway.fake.wait_sent(1)
    resp = await gateway.say("oLate", "hello", msg_id)  # WeChat's third try, after we replied
    assert resp.status == 200 and await resp.text() == "success"
    await asyncio.sleep(0.8)
    assert len(gateway.fake.sent_to("oLate")) == 1


async def test_same_msgid_on_two_accounts_are_two_messages(gateway: Harness) -> None:
    msg_id = next_msg_id()
    await gateway.say("oSame", "hi one", msg_id)
    await gateway.say("oSame", "hi two", msg_id, account=PLAIN_ACCOUNT)
    await gateway.fake.wait_sent(2)
    assert len(gateway.fake.sent_to("oSame")) == 2


async def test_streams_deleted_under_running_workers_are_recreated(gateway: Harness) -> None:
    await gateway.say("oBefore", "hi")
    await gateway.fake.wait_sent(1)
    await gateway.runtime.redis.flushdb()  # an operator wipes Redis while workers block on it
    await asyncio.sleep(0.7)
    await gateway.say("oAfter", "hi again")
    await gateway.fake.wait_sent(2, timeout_s=15)
    assert len(gateway.fake.sent_to("oAfter")) == 1
