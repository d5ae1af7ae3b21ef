"""WeCom KF through the real gateway: callback -> sync_msg from a persisted cursor -> replies.

Real Redis and MongoDB, the fake KF API on loopback. The fake keeps a message log per
KF account and serves it by cursor in pages, like WeCom.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestServer

from bot.messages import MessageKind
from channels.errors import OutsideServiceWindow
from channels.wecom_kf.channel import WeComKfChannel
from channels.wecom_kf.client import ServiceState
from channels.wecom_kf.fake_api import SYNC_PATH, FakeWeComKfAPI
from channels.wecom_kf.simulator import signed_kf_callback
from tests.conftest import FIXTURES
from tests.wecom.support import KF_ACCOUNT, OTHER_KEY, Gateway
from tests.wecom_kf.conftest import StartGateway

Fake = tuple[FakeWeComKfAPI, TestServer]
KF = "wkKefuRepairDesk01"
CURSOR_KEY = f"kefu:wecom_kf:{KF_ACCOUNT['corp_id']}:{KF}:cursor"


async def announce(gateway: Gateway, fake: FakeWeComKfAPI, open_kfid: str = KF, token: str | None = None) -> str:
    token = token or fake.callback_token()
    query, body = signed_kf_callback(KF_ACCOUNT, open_kfid, token)
    resp = await gateway.post("/wecom_kf/kf", query, body)
    assert resp.status == 200, await resp.text()
    assert await resp.text() == ""
    return token


def channel_of(gateway: Gateway) -> WeComKfChannel:
    channel = gateway.runtime.channel("wecom_kf", "kf")
    assert isinstance(channel, WeComKfChannel)
    return channel


async def settle(fake: FakeWeComKfAPI, count: int, quiet_s: float = 0.8) -> None:
    """Wait for ``count`` sends, then a quiet spell for a wrong extra one to show up."""
    await fake.wait_sent(count)
    await asyncio.sleep(quiet_s)


def replies_by_user(fake: FakeWeComKfAPI) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sent in fake.sent:
        out.setdefault(sent["touser"], []).append(sent["text"]["content"])
    return out


async def test_text_in_reply_out_through_send_msg(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.add_customer_message(KF, "wmCustomerA", "我的空调不制冷")
    token = await announce(gateway, fake)
    (sent,) = await fake.wait_sent(1)
    assert sent["touser"] == "wmCustomerA" and sent["open_kfid"] == KF and sent["msgtype"] == "text"
    assert "我的空调不制冷" in sent["text"]["content"]
    assert fake.sync_calls[0].token == token and fake.sync_calls[0].cursor == ""
    store = gateway.runtime.store
    inbound = await store.messages.find_one({"direction": "in", "sender": "wmCustomerA"})
    assert inbound is not None and inbound["conversation"] == f"wecom_kf:kf:{KF}:wmCustomerA"
    # The callback itself is a notification: never stored, never answered.
    assert await store.messages.count_documents({"direction": "in", "kind": "event"}) == 0


async def test_paging_with_has_more_and_the_cursor_persisted(gateway: Gateway, fake_kf: Fake, redis: Any) -> None:
    fake, _ = fake_kf
    fake.page_size = 2
    for i in range(5):
        fake.add_customer_message(KF, f"wmPager{i}", f"第{i}条")
    await announce(gateway, fake)
    await settle(fake, 5)
    assert sorted(replies_by_user(fake)) == [f"wmPager{i}" for i in range(5)]
    assert all(len(v) == 1 for v in replies_by_user(fake).values())
    assert [c.cursor for c in fake.sync_calls] == ["", "CUR00000002", "CUR00000004"]
    assert await redis.get(CURSOR_KEY) == b"CUR00000005"
    # The next callback starts where the last sync ended, never from an empty cursor.
    fake.add_customer_message(KF, "wmPager5", "再来一条")
    await announce(gateway, fake)
    await settle(fake, 6)
    assert fake.sync_calls[-1].cursor == "CUR00000005"
    assert len(fake.sent) == 6 and len(replies_by_user(fake)["wmPager5"]) == 1


async def test_restart_in_the_middle_of_a_sync_loses_and_repeats_nothing(
    start_gateway: StartGateway, fake_kf: Fake, redis: Any
) -> None:
    fake, _ = fake_kf
    fake.page_size = 2
    for i in range(5):
        fake.add_customer_message(KF, f"wmRestart{i}", f"消息{i}")
    # Page 1 is served, then every sync call fails while the first gateway runs.
    fake.fail_next(1000, path=SYNC_PATH, after=1, status=500)
    first = await start_gateway()
    await announce(first, fake)
    await settle(fake, 2, quiet_s=1.5)  # page 1 answered; page 2 failed and was retried
    assert sorted(replies_by_user(fake)) == ["wmRestart0", "wmRestart1"]
    assert await redis.get(CURSOR_KEY) == b"CUR00000002"  # not past the unqueued messages
    assert fake.calls[SYNC_PATH] >= 2
    await first.client.close()  # the process dies; its callback stays pending in the stream

    fake.clear_failures()
    await start_gateway()  # a new process takes the pending callback over
    await settle(fake, 5)
    replies = replies_by_user(fake)
    assert sorted(replies) == [f"wmRestart{i}" for i in range(5)]
    assert all(len(v) == 1 for v in replies.values()), replies
    assert await redis.get(CURSOR_KEY) == b"CUR00000005"
    assert [c.cursor for c in fake.sync_calls if c.returned] == ["", "CUR00000002", "CUR00000004"]


async def test_crash_after_enqueue_before_the_cursor_moves(gateway: Gateway, fake_kf: Fake, redis: Any) -> None:
    """The worst moment: the page is queued, the cursor not saved. The re-read is deduplicated."""
    fake, _ = fake_kf
    channel = channel_of(gateway)
    real_enqueue = gateway.runtime.queue.enqueue
    for i in range(3):
        fake.add_customer_message(KF, f"wmCrash{i}", f"c{i}")

    async def enqueue_then_die(messages: Any) -> int:
        await real_enqueue(messages)
        raise ConnectionError("killed after XADD, before the cursor write")

    channel._enqueue = enqueue_then_die
    try:
        await channel.sync(KF)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the injected crash must surface")
    assert await redis.get(CURSOR_KEY) is None
    channel._enqueue = real_enqueue
    assert await channel.sync(KF) == 0  # the same page again: all three already queued
    assert await redis.get(CURSOR_KEY) == b"CUR00000003"
    await settle(fake, 3)
    assert len(fake.sent) == 3


async def test_two_concurrent_callbacks_answer_each_message_once(start_gateway: StartGateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.page_size = 2
    fake.latency_s = 0.02  # long enough for the two syncs to overlap without the lease
    gateway = await start_gateway(workers=2)
    for i in range(6):
        fake.add_customer_message(KF, f"wmBoth{i}", f"并发{i}")
    await asyncio.gather(announce(gateway, fake), announce(gateway, fake))
    await settle(fake, 6)
    replies = replies_by_user(fake)
    assert sorted(replies) == [f"wmBoth{i}" for i in range(6)]
    assert all(len(v) == 1 for v in replies.values())
    # One sync at a time per KF account: no cursor was ever read twice with messages behind it.
    used = [c.cursor for c in fake.sync_calls if c.returned]
    assert len(used) == len(set(used)) == 3


async def test_two_processes_syncing_the_same_kf_take_turns(start_gateway: StartGateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.page_size = 1
    fake.latency_s = 0.02
    a, b = await start_gateway("web"), await start_gateway("web")
    for i in range(4):
        fake.add_customer_message(KF, f"wmTurn{i}", str(i))
    queued = await asyncio.gather(channel_of(a).sync(KF), channel_of(b).sync(KF))
    assert sum(queued) == 4
    # The second sync waited for the lease and began at the first one's final cursor;
    # without the lease both would have read every page from "".
    assert [c.cursor for c in fake.sync_calls] == ["", "CUR00000001", "CUR00000002", "CUR00000003", "CUR00000004"]
    assert await a.runtime.redis.xlen(a.runtime.queue.stream) == 4


async def test_callback_retries_are_deduplicated_but_new_callbacks_sync(web_only: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    token = fake.callback_token()
    query, body = signed_kf_callback(KF_ACCOUNT, KF, token, create_time=1_765_000_000)
    for _ in range(3):  # WeCom retrying one callback: the same payload each time
        assert (await web_only.post("/wecom_kf/kf", query, body)).status == 200
    assert await web_only.runtime.redis.xlen(web_only.runtime.queue.stream) == 1
    # A later callback reusing the Token announces new messages: it is queued (a sync).
    query, body = signed_kf_callback(KF_ACCOUNT, KF, token, create_time=1_765_000_007)
    assert (await web_only.post("/wecom_kf/kf", query, body)).status == 200
    assert await web_only.runtime.redis.xlen(web_only.runtime.queue.stream) == 2


async def test_a_second_callback_with_the_same_token_syncs_again(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    token = fake.callback_token()
    fake.add_customer_message(KF, "wmFirst", "第一条")
    query, body = signed_kf_callback(KF_ACCOUNT, KF, token, create_time=int(time.time()) - 5)
    assert (await gateway.post("/wecom_kf/kf", query, body)).status == 200
    await fake.wait_sent(1)
    fake.add_customer_message(KF, "wmSecond", "第二条")
    query, body = signed_kf_callback(KF_ACCOUNT, KF, token, create_time=int(time.time()))
    assert (await gateway.post("/wecom_kf/kf", query, body)).status == 200
    await settle(fake, 2)
    assert sorted(replies_by_user(fake)) == ["wmFirst", "wmSecond"] and len(fake.sync_calls) == 2


async def test_servicer_messages_are_not_answered_and_events_are_kept(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.add_item(KF, {"external_userid": "wmMixed", "origin": 5, "servicer_userid": "zhangsan", "msgtype": "text", "text": {"content": "人工回复"}})
    fake.add_event(KF, "wmMixed", "enter_session", scene="s1", welcome_code="WELCOME1")
    fake.add_customer_message(KF, "wmMixed", "hello")
    await announce(gateway, fake)
    await settle(fake, 1)
    assert len(fake.sent) == 1 and "hello" in fake.sent[0]["text"]["content"]
    store = gateway.runtime.store
    for _ in range(40):
        if await store.messages.count_documents({"direction": "in", "sender": "wmMixed"}) == 2:
            break
        await asyncio.sleep(0.05)
    kinds = sorted([d["kind"] async for d in store.messages.find({"direction": "in", "sender": "wmMixed"})])
    assert kinds == [MessageKind.EVENT.value, MessageKind.TEXT.value]


async def test_voice_format_silk_is_asked_for_and_recorded(start_gateway: StartGateway, fake_kf: Fake, aiohttp_client: Any, redis_url: str, mongo_url: str) -> None:
    from bot.app import build_app
    from bot.config import settings_from_mapping
    from tests.wecom.support import kf_config

    fake, server = fake_kf
    config = kf_config(redis_url, mongo_url, str(server.make_url("")), account={**KF_ACCOUNT, "voice_format": "silk"})
    gateway = Gateway(await aiohttp_client(build_app(settings_from_mapping(config, env={}))))
    fake.add_customer_message(KF, "wmVoice", msgtype="voice", body={"media_id": "SILK_MEDIA"})
    fake.add_media(b"\x02#!SILK_V3", media_id="SILK_MEDIA")
    await announce(gateway, fake)
    await settle(fake, 1)
    assert fake.sync_calls[0].voice_format == 1
    doc = await gateway.runtime.store.messages.find_one({"direction": "in", "sender": "wmVoice"})
    assert doc is not None and doc["media"]["format"] == "silk"
    from bot.messages import MediaRef

    assert await channel_of(gateway).fetch_media(MediaRef("SILK_MEDIA", "silk")) == b"\x02#!SILK_V3"


async def test_hand_off_to_a_human_and_back(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    channel = channel_of(gateway)
    code = await channel.transfer_to_human(KF, "wmHandoff", servicer_userid="lisi")
    assert code
    state = await channel.session_state(KF, "wmHandoff")
    assert state.state is ServiceState.HUMAN and state.servicer_userid == "lisi"
    # While a human holds the session, the bot's replies are refused and dead-lettered.
    fake.add_customer_message(KF, "wmHandoff", "still there?")
    await announce(gateway, fake)
    store = gateway.runtime.store
    for _ in range(100):
        if await store.dead_letters.count_documents({"kind": "outbound"}):
            break
        await asyncio.sleep(0.05)
    assert fake.sent_to("wmHandoff") == []
    assert await store.dead_letters.count_documents({"kind": "outbound"}) == 1
    await channel.transfer_to_bot(KF, "wmHandoff")
    assert (await channel.session_state(KF, "wmHandoff")).state is ServiceState.BOT
    assert fake.session(KF, "wmHandoff").history == [3, 1]
    await channel.transfer_to_human(KF, "wmHandoff")  # no servicer named: the queue
    assert fake.session(KF, "wmHandoff").state == ServiceState.QUEUED


async def test_reply_quota_is_outside_the_window(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.fail_next(1, errcode=95001)
    channel = channel_of(gateway)
    from bot.messages import OutboundMessage

    reply = OutboundMessage("wecom_kf", "kf", "wmQuota", f"wecom_kf:kf:{KF}:wmQuota", "k1", text="hi")
    try:
        await channel.send(reply)
    except OutsideServiceWindow:
        pass
    else:
        raise AssertionError("95001 must be OutsideServiceWindow")
    await channel.send(reply)  # no hint: the open_kfid comes from the conversation id
    assert fake.sent_to("wmQuota")[0]["open_kfid"] == KF


async def test_expired_callback_token_falls_back_to_a_tokenless_sync(gateway: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    fake.add_customer_message(KF, "wmLate", "late")
    await announce(gateway, fake, token="EXPIRED-TOKEN")  # the fake never issued it: 95007
    await settle(fake, 1)
    # Refused with the stale token (95007), then served without one.
    assert [c.token for c in fake.sync_calls] == [""]
    assert fake.calls[SYNC_PATH] == 2


async def test_forged_wrong_key_and_hostile_callbacks_change_nothing(web_only: Gateway, fake_kf: Fake) -> None:
    fake, _ = fake_kf
    query, body = signed_kf_callback(KF_ACCOUNT, KF, fake.callback_token())
    forged = {**query, "msg_signature": "0" * 40}
    assert (await web_only.post("/wecom_kf/kf", forged, body)).status == 403
    query, body = signed_kf_callback({**KF_ACCOUNT, "encoding_aes_key": OTHER_KEY}, KF, fake.callback_token())
    assert (await web_only.post("/wecom_kf/kf", query, body)).status == 400
    from channels.wecom.simulator import signed_callback

    bomb = (FIXTURES / "wechat" / "billion_laughs.xml").read_text()
    query, body = signed_callback(KF_ACCOUNT, bomb)
    assert (await web_only.post("/wecom_kf/kf", query, body)).status == 400
    await web_only.assert_nothing_kept()
    assert fake.sync_calls == []
