from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wecom.fake_api import FakeWeComAPI
from tests.wecom.support import Gateway, wecom_config


@pytest.fixture
async def fake_wecom(aiohttp_server: Any) -> tuple[FakeWeComAPI, TestServer]:
    fake = FakeWeComAPI()
    server = await aiohttp_server(fake.app())
    return fake, server


@pytest.fixture
async def gateway(aiohttp_client: Any, fake_wecom: tuple[FakeWeComAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:
    settings = settings_from_mapping(wecom_config(redis_url, mongo_url, str(fake_wecom[1].make_url(""))), env={})
    return Gateway(await aiohttp_client(build_app(settings)))


@pytest.fixture
async def web_only(aiohttp_client: Any, fake_wecom: tuple[FakeWeComAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:
    """The webhook without workers: what it enqueues stays in the stream for inspection."""
    settings = settings_from_mapping(wecom_config(redis_url, mongo_url, str(fake_wecom[1].make_url(""))), env={})
    return Gateway(await aiohttp_client(build_app(settings, role="web")))
