"""When Redis or MongoDB is down the webhook answers 503, so WeChat retries later."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.runtime import RUNTIME
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, gateway_config
from tests.services import free_port, mongo_server


async def test_redis_unreachable_answers_503(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], mongo_url: str
) -> None:
    fake, server = fake_wechat
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    cfg = gateway_config(dead_redis, mongo_url, str(server.make_url("")))
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))
    resp = await Harness(client=client, fake=fake).say("oX", "hello")
    assert resp.status == 503
    assert "queue unavailable" in await resp.text()


@pytest.mark.no_blockbuster  # stops a server process synchronously
async def test_mongo_down_answers_503(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, redis: Any, tmp_path: Path
) -> None:
    fake, server = fake_wechat
    with mongo_server(tmp_path) as base:
        cfg = gateway_config(redis_url, base + "/kefu_outage", str(server.make_url("")))
        client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))
        harness = Harness(client=client, fake=fake)
        assert (await harness.say("oY", "before")).status == 200
    # The server is gone now; the webhook must learn it within about a second.
    gone = time.monotonic()
    health = client.app[RUNTIME].health
    for _ in range(60):
        if not health.mongo_ok:
            break
        await asyncio.sleep(0.05)
    assert not health.mongo_ok
    assert time.monotonic() - gone < 2.0
    queued_before = await redis.xlen("kefu:inbound")
    resp = await harness.say("oY", "during outage")
    assert resp.status == 503
    assert await redis.xlen("kefu:inbound") == queued_before
