"""A worker process SIGKILLed while its replies are in flight, on three platforms.

The fake platform holds each send for a while and then accepts it (the HTTP call was
made: the platform has the message even though the sender never saw the answer). A
second worker takes the entries over and sends them again. What the customer sees:

- WeCom app messages: once (``enable_duplicate_check`` drops the identical repeat);
- WeCom customer service: once (the repeat carries the first attempt's ``msgid``);
- WeChat: no idempotency key exists; at most one repeat per conversation, never more
  than the number of sends in flight at the kill (the README states this bound).

Nothing is lost in any case.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.fake_tencent import FakeTencentAPI
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from channels.wecom_kf.simulator import signed_kf_callback
from tests.faults.processes import GatewayProcess
from tests.harness import Harness, gateway_config
from tests.wecom.support import KF_ACCOUNT, Gateway, kf_config, wecom_config

pytestmark = pytest.mark.no_blockbuster  # starts and kills worker processes

CUSTOMERS = [f"cust{i}" for i in range(6)]
KF = "wkKefuCrashDesk"
HOLD_S = 1.5  # how long the fake platform holds each send before taking it


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def crash_mid_send(fake: FakeTencentAPI, config: dict[str, Any], tmp_path: Path, post_all: Callable[[], Any]) -> Counter[str]:
    first = GatewayProcess(config, "worker", tmp_path, "worker-a")
    second = GatewayProcess(config, "worker", tmp_path, "worker-b")
    fake.latency_s = HOLD_S
    first.start()
    try:
        await post_all()
        await wait_until(lambda: fake.send_calls >= len(CUSTOMERS), 60)
        first.kill()  # every reply is in flight; none is marked sent or acknowledged
        await wait_until(lambda: len(fake.sent) >= len(CUSTOMERS))  # the platform took them
        fake.latency_s = 0.0
        second.start()
        await wait_until(lambda: set(CUSTOMERS) <= {s["touser"] for s in fake.sent})
        await asyncio.sleep(6.0)  # takeover after claim_idle_ms, and time for a repeat
    finally:
        first.kill()
        second.stop()
    return Counter(s["touser"] for s in fake.sent)


async def say_on_wecom(web: Gateway, fake: FakeWeComAPI) -> None:
    for customer in CUSTOMERS:
        assert (await web.say(customer, "在吗")).status == 200


async def say_on_wecom_kf(web: Gateway, fake: FakeWeComAPI) -> None:
    assert isinstance(fake, FakeWeComKfAPI)
    for customer in CUSTOMERS:
        fake.add_customer_message(KF, customer, "在吗")
    query, body = signed_kf_callback(KF_ACCOUNT, KF, fake.callback_token())
    assert (await web.post("/wecom_kf/kf", query, body)).status == 200


@pytest.mark.parametrize(
    ("fake_class", "make_config", "say"),
    [(FakeWeComAPI, wecom_config, say_on_wecom), (FakeWeComKfAPI, kf_config, say_on_wecom_kf)],
    ids=["wecom-duplicate-check", "wecom_kf-msgid"],
)
async def test_platform_idempotency_absorbs_the_repeat(
    aiohttp_client: Any, aiohttp_server: Any, redis_url: str, mongo_url: str, redis: Any, tmp_path: Path,
    fake_class: type[FakeWeComAPI], make_config: Callable[..., dict[str, Any]], say: Callable[[Gateway, FakeWeComAPI], Any],
) -> None:
    fake = fake_class()
    server: TestServer = await aiohttp_server(fake.app())
    config = make_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=1000)
    web = Gateway(await aiohttp_client(build_app(settings_from_mapping(config, env={}), role="web")))

    sent = await crash_mid_send(fake, config, tmp_path, lambda: say(web, fake))
    assert sent == Counter({c: 1 for c in CUSTOMERS})
    # Repeats were made (the sends in flight at the kill) and stopped at the platform.
    assert fake.duplicates_dropped >= 1 and fake.send_calls == len(CUSTOMERS) + fake.duplicates_dropped


async def test_wechat_repeats_at_most_one_per_conversation(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Any, tmp_path: Path
) -> None:
    fake, server = fake_wechat
    config = gateway_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=1000)
    web = Harness(client=await aiohttp_client(build_app(settings_from_mapping(config, env={}), role="web")), fake=fake)

    async def post_all() -> None:
        for customer in CUSTOMERS:
            assert (await web.say(customer, "在吗")).status == 200

    sent = await crash_mid_send(fake, config, tmp_path, post_all)
    assert set(sent) == set(CUSTOMERS)  # lost = 0
    assert max(sent.values()) <= 2  # at most the one send in flight per conversation repeats
    assert sum(sent.values()) - len(CUSTOMERS) <= len(CUSTOMERS)  # doubled <= in flight at the kill
