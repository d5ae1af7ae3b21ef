"""A poison message in the middle of a concurrent burst, on every webhook channel.

The poison is whatever the channel's wire format can carry that no UTF-8 encoder
accepts or no parser reads: a lone surrogate in DingTalk's JSON or in a WeCom KF sync
item (repaired and answered), an XML character reference to a surrogate in WeChat's and
WeCom's XML (refused with a 400). Either way every other message of the burst, which
shares the poison's group commit, is accepted and answered exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp.test_utils import TestServer

from bot.messages import InboundMessage, MessageKind
from bot.queue import InboundQueue
from channels.dingtalk.simulator import robot_message
from channels.email.simulator import customer_mail
from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom.simulator import signed_callback
from channels.wecom.simulator import text_xml as wecom_xml
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from channels.wechat.simulator import signed_request, text_xml
from tests.dingtalk.conftest import DingHarness
from tests.email.conftest import MailHarness
from tests.harness import PLAIN_ACCOUNT, Harness, next_msg_id
from tests.wecom.support import CORP_ID, WECOM_ACCOUNT, Gateway
from tests.wecom_kf.test_end_to_end import CURSOR_KEY, KF, announce

BURST = 24
SURROGATE_REF = "&#xD800;"  # XML 1.0 forbids it: expat refuses the document


def bare(xml: str, text: str) -> str:
    """The text outside CDATA, where a character reference is parsed."""
    assert f"<![CDATA[{text}]]>" in xml
    return xml.replace(f"<![CDATA[{text}]]>", text)


async def settle(sent: list[Any], expected: int, quiet_s: float = 1.0) -> None:
    for _ in range(200):
        if len(sent) >= expected:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(quiet_s)  # a duplicate would show up within this


async def test_wechat_burst_with_poison(gateway: Harness) -> None:
    async def post(i: int) -> int:
        text = f"poison {SURROGATE_REF}" if i == BURST // 2 else f"hello {i}"
        query, body = signed_request(PLAIN_ACCOUNT, bare(text_xml(f"oBurst{i}", text, next_msg_id()), text))
        resp = await gateway.client.post("/wechat/plain", params=query, data=body)
        return resp.status

    statuses = await asyncio.gather(*(post(i) for i in range(BURST + 1)))
    assert statuses[BURST // 2] == 400
    assert [s for i, s in enumerate(statuses) if i != BURST // 2] == [200] * BURST
    await settle(gateway.fake.sent, BURST)
    per_user = Counter(s["touser"] for s in gateway.fake.sent)
    assert per_user == Counter({f"oBurst{i}": 1 for i in range(BURST + 1) if i != BURST // 2})


async def test_dingtalk_burst_with_lone_surrogate(ding: DingHarness) -> None:
    async def post(i: int) -> int:
        conversation = f"cidBurst{i}"
        text = "half an emoji \ud83d here" if i == BURST // 2 else f"hello {i}"
        data = robot_message(f"user{i}", text=text, conversation_id=conversation, session_webhook=ding.webhook(conversation))
        # json.dumps escapes the lone surrogate as \ud83d, as any JSON sender would.
        resp = await ding.client.post(
            "/dingtalk/robot", data=json.dumps(data).encode(), headers=_signed(ding)
        )
        return resp.status

    statuses = await asyncio.gather(*(post(i) for i in range(BURST + 1)))
    assert statuses == [200] * (BURST + 1)
    await settle(ding.fake.sent, BURST + 1)
    per_conversation = Counter(s["conversationId"] for s in ding.fake.sent)
    assert per_conversation == Counter({f"cidBurst{i}": 1 for i in range(BURST + 1)})
    doc = await ding.runtime.store.messages.find_one({"direction": "in", "conversation": "dingtalk:robot:cidBurst12"})
    assert doc is not None and doc["text"] == "half an emoji \ufffd here"


def _signed(ding: DingHarness) -> dict[str, str]:
    from channels.dingtalk.simulator import signed_headers
    from tests.dingtalk.conftest import ROBOT

    return signed_headers(ROBOT["app_secret"])


async def test_wecom_burst_with_poison(
    aiohttp_client: Any, fake_wecom: tuple[FakeWeComAPI, TestServer], wecom_gateway: Gateway
) -> None:
    fake, _ = fake_wecom

    async def post(i: int) -> int:
        text = f"poison {SURROGATE_REF}" if i == BURST // 2 else f"hello {i}"
        query, body = signed_callback(WECOM_ACCOUNT, bare(wecom_xml(CORP_ID, f"user{i}", text, next_msg_id()), text))
        resp = await wecom_gateway.post("/wecom/corp", query, body)
        return resp.status

    statuses = await asyncio.gather(*(post(i) for i in range(BURST + 1)))
    assert statuses[BURST // 2] == 400
    assert [s for i, s in enumerate(statuses) if i != BURST // 2] == [200] * BURST
    await settle(fake.sent, BURST)
    assert Counter(s["touser"] for s in fake.sent) == Counter({f"user{i}": 1 for i in range(BURST + 1) if i != BURST // 2})


async def test_wecom_kf_poison_items_do_not_pin_the_cursor(fake_kf: tuple[FakeWeComKfAPI, TestServer], kf_gateway: Gateway) -> None:
    fake, _ = fake_kf
    for i in range(BURST):
        if i == 5:
            fake.add_customer_message(KF, "wmHalfEmoji", "半个表情 \ud83d")  # repaired, answered
        elif i == 9:
            # A location nobody can read: dead-lettered alone.
            fake.add_customer_message(KF, "wmBroken", msgtype="location", body={"latitude": "north", "longitude": "east"})
        else:
            fake.add_customer_message(KF, f"wmCustomer{i}", f"你好 {i}")
    await announce(kf_gateway, fake)
    await settle(fake.sent, BURST - 1)
    per_user = Counter(s["touser"] for s in fake.sent)
    assert per_user == Counter({**{f"wmCustomer{i}": 1 for i in range(BURST) if i not in (5, 9)}, "wmHalfEmoji": 1})
    rt = kf_gateway.runtime
    dead = await rt.store.dead_letters.find({"kind": "wecom_kf_item"}).to_list(None)
    assert len(dead) == 1 and "north" in dead[0]["payload"]
    assert (await rt.redis.get(CURSOR_KEY)) is not None  # the cursor moved past the bad item

    # A later customer on the same account is answered.
    fake.add_customer_message(KF, "wmLater", "还在吗")
    await announce(kf_gateway, fake)
    await settle(fake.sent, BURST, quiet_s=0.5)
    assert len(fake.sent_to("wmLater")) == 1


async def test_group_commit_isolates_a_message_redis_refuses(redis: Any) -> None:
    """Beyond text repair: a caller whose part of the batch Redis refuses fails alone.

    The refusal is real: the poison's conversation key already holds a string, so the
    script's RPUSH onto it fails with WRONGTYPE inside the shared call.
    """
    queue = InboundQueue(redis, "kefu:test:inbound", dedup_ttl_s=60, claim_idle_ms=1000)
    await redis.set("kefu:conv:pending:wechat:plain:oPoison", "not a list")

    def message(sender: str, n: int) -> InboundMessage:
        return InboundMessage(
            channel="wechat", account="plain", sender=sender, conversation=f"wechat:plain:{sender}",
            kind=MessageKind.TEXT, platform_id=str(n), timestamp=1.0, text="hi",
        )

    results = await asyncio.gather(
        *(queue.enqueue([message("oPoison" if i == 7 else f"oOk{i}", i)]) for i in range(16)), return_exceptions=True
    )
    assert isinstance(results[7], Exception)
    assert [r for i, r in enumerate(results) if i != 7] == [1] * 15


async def test_email_batch_with_undecodable_mail(mail_gateway: MailHarness) -> None:
    """Mails are fetched in batches; one whose headers and body hold raw bytes that are
    not UTF-8 (the email package keeps them as lone surrogates) is repaired like the
    rest, and every mail of the batch is answered once."""
    h = mail_gateway
    for i in range(8):
        _, raw = customer_mail(f"c{i}@example.com", h.account["address"], f"你好 {i}", subject=f"问题 {i}")
        if i == 4:
            raw = raw.replace("问题 4".encode(), b"\xff\xfe bad \xc3").replace("你好 4".encode("utf-8"), b"\xff broken \xe4\xbd")
            assert b"\xff" in raw
        h.dovecot.deliver("support", raw)
    sent = await asyncio.to_thread(h.sink.wait, 8, 30.0)
    await asyncio.sleep(1.0)
    sent = await asyncio.to_thread(h.sink.wait, 9, 0.1)  # a duplicate would be a ninth
    assert Counter(str(m["To"]) for m in sent) == Counter({f"c{i}@example.com": 1 for i in range(8)})
    doc = await h.runtime.store.messages.find_one({"direction": "in", "sender": "c4@example.com"})
    assert doc is not None and "\ufffd" in doc["text"]
