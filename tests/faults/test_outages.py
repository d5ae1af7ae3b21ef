"""MongoDB down and back, a flaky platform, a dead platform: lost = 0, doubled = 0.

A MongoDB outage is not the messages' fault: however long it lasts (here longer than
max_inbound_attempts takeovers), no message is dead-lettered for it; each is handled
once MongoDB is back. A flaky platform's failures are retried and each message arrives
once; a dead platform's messages end as dead letters, each recorded, none sent.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.faults.servers import MongoProcess
from tests.harness import Harness, gateway_config

CUSTOMERS = [f"oFault{i}" for i in range(6)]


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def own_mongo(tmp_path: Path) -> AsyncIterator[MongoProcess]:
    (tmp_path / "mongo").mkdir()
    server = MongoProcess(tmp_path / "mongo")
    server.start()
    yield server
    server.stop()


@pytest.mark.no_blockbuster  # stops and restarts a server process
async def test_mongo_outage_longer_than_max_attempts_loses_and_doubles_nothing(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, redis: Any, own_mongo: MongoProcess
) -> None:
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, own_mongo.url, str(server.make_url("")), claim_idle_ms=400, max_inbound_attempts=3)
    gateway = Harness(client=await aiohttp_client(build_app(settings_from_mapping(cfg, env={}))), fake=fake)
    for customer in CUSTOMERS:
        assert (await gateway.say(customer, "在吗")).status == 200
    own_mongo.kill()
    await asyncio.sleep(4.0)  # ten takeovers' worth of claim_idle_ms, three attempts allowed
    own_mongo.start()
    await wait_until(lambda: set(CUSTOMERS) <= {s["touser"] for s in fake.sent})
    await asyncio.sleep(2.0)
    assert Counter(s["touser"] for s in fake.sent) == Counter({c: 1 for c in CUSTOMERS})
    assert await gateway.runtime.store.dead_letters.count_documents({}) == 0


async def test_flaky_platform_every_message_once(gateway: Harness) -> None:
    fake = gateway.fake
    fake.fail_next(4, status=502)  # the first four sends fail, as a flapping gateway does
    fake.fail_next(2, after=2, errcode=-1)  # WeChat's "system busy", later on
    for customer in CUSTOMERS:
        assert (await gateway.say(customer, "在吗")).status == 200
    await wait_until(lambda: set(CUSTOMERS) <= {s["touser"] for s in fake.sent})
    await asyncio.sleep(1.5)
    assert Counter(s["touser"] for s in fake.sent) == Counter({c: 1 for c in CUSTOMERS})
    assert fake.send_calls >= len(CUSTOMERS) + 4


async def test_dead_platform_dead_letters_each_message_sends_none(gateway: Harness) -> None:
    fake = gateway.fake
    fake.fail_next(1000, status=503)
    for customer in CUSTOMERS:
        assert (await gateway.say(customer, "在吗")).status == 200
    store = gateway.runtime.store
    deadline = time.monotonic() + 30
    while await store.dead_letters.count_documents({"kind": "outbound"}) < len(CUSTOMERS):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    fake.clear_failures()
    await asyncio.sleep(1.0)
    assert fake.sent == []
    statuses = [d["status"] async for d in store.messages.find({"direction": "out"})]
    assert statuses == ["dead"] * len(CUSTOMERS)
    text = await (await gateway.client.get("/metrics")).text()
    assert 'kefu_dead_letters_total{kind="outbound"} 6.0' in text
