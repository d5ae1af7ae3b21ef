"""Redis killed mid-send and Redis frozen: nothing lost, nothing sent twice, acks on time.

The gateway runs on a Redis of the test's own (tests/faults/servers.py) that is killed
or SIGSTOPped while the fake WeChat API is holding replies in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from redis.asyncio import Redis

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.queue import InboundQueue
from channels.wechat.fake_api import FakeWeChatAPI
from tests.email.servers import Dovecot
from tests.email.test_intake import STREAM, fill, intake, queueing
from tests.faults.servers import RedisProcess
from tests.harness import Harness, gateway_config, next_msg_id

pytestmark = pytest.mark.no_blockbuster  # the test kills and restarts a server process

SENDERS = [f"oOutage{i}" for i in range(8)]


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


async def start(aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=800)
    return Harness(client=await aiohttp_client(build_app(settings_from_mapping(cfg, env={}))), fake=fake)


async def wait_for(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_redis_dies_while_replies_are_in_flight_nothing_sent_twice(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], own_redis: RedisProcess, mongo_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway = await start(aiohttp_client, fake_wechat, own_redis.url, mongo_url)
    fake = gateway.fake
    fake.latency_s = 1.5  # every send is held in flight by the platform
    for sender in SENDERS:
        assert (await gateway.say(sender, "在吗")).status == 200
    await wait_for(lambda: fake.send_calls >= len(SENDERS))
    caplog.set_level(logging.INFO)
    own_redis.kill()  # the sends complete; their sent marks cannot be written
    await wait_for(lambda: len(fake.sent) >= len(SENDERS))
    fake.latency_s = 0.0
    await asyncio.sleep(2.0)  # past claim_idle_ms: a forgotten outcome would be re-sent
    own_redis.start()
    await asyncio.sleep(4.0)  # time for takeover and for a duplicate to arrive
    assert Counter(s["touser"] for s in fake.sent) == Counter({s: 1 for s in SENDERS})
    docs = await gateway.runtime.store.messages.find({"direction": "out"}).to_list(None)
    assert sorted(d["status"] for d in docs) == ["sent"] * len(SENDERS)
    # The outage is told once per loop, and its end once; no tracebacks.
    failing = [r for r in caplog.records if "failing" in r.getMessage() and r.levelno >= logging.ERROR]
    recovered = [r for r in caplog.records if "recovered after" in r.getMessage()]
    assert failing and len(failing) == len({r.getMessage().split(" failing")[0] for r in failing})
    assert len(recovered) >= 1
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]


async def test_frozen_redis_webhook_answers_503_within_a_second(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], own_redis: RedisProcess, mongo_url: str
) -> None:
    gateway = await start(aiohttp_client, fake_wechat, own_redis.url, mongo_url)
    ids = {sender: next_msg_id() for sender in SENDERS}
    own_redis.freeze()
    try:
        began = time.monotonic()
        statuses = await asyncio.gather(*(gateway.say(s, "hello", ids[s]) for s in SENDERS))
        elapsed = time.monotonic() - began
    finally:
        own_redis.thaw()
    assert [r.status for r in statuses] == [503] * len(SENDERS)
    assert elapsed < 1.5  # the deadline is 0.8 s; WeCom allows 1 s, WeChat 5 s
    # The platform retries with the same MsgId: each message is answered exactly once.
    retried = await asyncio.gather(*(gateway.say(s, "hello", ids[s]) for s in SENDERS))
    assert [r.status for r in retried] == [200] * len(SENDERS)
    await gateway.fake.wait_sent(len(SENDERS), timeout_s=15)
    await asyncio.sleep(1.5)
    assert Counter(s["touser"] for s in gateway.fake.sent) == Counter({s: 1 for s in SENDERS})


async def test_email_intake_rides_out_a_redis_outage(own_redis: RedisProcess, dovecot: Dovecot, caplog: pytest.LogCaptureFixture) -> None:
    """The mailbox lock lives in Redis: while Redis is down the intake waits (one log
    line), and afterwards it fetches what arrived meanwhile, each mail queued once."""
    redis = Redis.from_url(own_redis.url)
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    seen: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(intake(redis, dovecot, queueing(queue, seen)).run(stop))
    try:
        fill(dovecot, 3)
        await wait_for(lambda: len(seen) >= 3)
        caplog.set_level(logging.INFO)
        own_redis.kill()
        fill(dovecot, 3)
        await asyncio.sleep(2.0)
        assert not task.done(), task  # the intake did not die with Redis
        own_redis.start()
        await wait_for(lambda: len(seen) >= 6, 30)
        assert await redis.xlen(STREAM) == 6
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()
    failing = [r for r in caplog.records if "intake" in r.getMessage() and "failing" in r.getMessage()]
    assert len(failing) == 1 and any("recovered" in r.getMessage() for r in caplog.records)
