from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, gateway_config


@pytest.fixture
async def fake_wechat(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeChatAPI, TestServer]]:
    fake = FakeWeChatAPI()
    server = await aiohttp_server(fake.app())
    yield fake, server


@pytest.fixture
async def gateway(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    fake, server = fake_wechat
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, str(server.make_url(""))), env={})
    client = await aiohttp_client(build_app(settings))
    return Harness(client=client, fake=fake)


@pytest.fixture
async def web_only(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    """The webhook without workers: what it enqueues stays in the stream for inspection."""
    fake, server = fake_wechat
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, str(server.make_url(""))), env={})
    client = await aiohttp_client(build_app(settings, role="web"))
    return Harness(client=client, fake=fake)
