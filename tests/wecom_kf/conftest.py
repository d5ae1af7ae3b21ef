from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from tests.wecom.support import Gateway, kf_config

StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def fake_kf(aiohttp_server: Any) -> tuple[FakeWeComKfAPI, TestServer]:
    fake = FakeWeComKfAPI()
    server = await aiohttp_server(fake.app())
    return fake, server


@pytest.fixture
def start_gateway(
    aiohttp_client: Any, fake_kf: tuple[FakeWeComKfAPI, TestServer], redis_url: str, mongo_url: str, redis: Any
) -> StartGateway:
    """Start a gateway on the shared Redis and MongoDB; call again for a 'restarted' one."""

    async def start(role: str = "all", **pipeline: Any) -> Gateway:
        config = kf_config(redis_url, mongo_url, str(fake_kf[1].make_url("")), **pipeline)
        return Gateway(await aiohttp_client(build_app(settings_from_mapping(config, env={}), role=role)))  # type: ignore[arg-type]

    return start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Gateway:
    return await start_gateway()


@pytest.fixture
async def web_only(start_gateway: StartGateway) -> Gateway:
    return await start_gateway("web")
