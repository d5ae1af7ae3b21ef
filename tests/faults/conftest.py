"""Gateways of every channel on the shared Redis and MongoDB, for the fault suite."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from tests.dingtalk.conftest import ding, fake_dingtalk  # noqa: F401  (fixtures)
from tests.wecom.support import Gateway, kf_config, wecom_config


@pytest.fixture
async def fake_wecom(aiohttp_server: Any) -> tuple[FakeWeComAPI, TestServer]:
    fake = FakeWeComAPI()
    return fake, await aiohttp_server(fake.app())


@pytest.fixture
async def fake_kf(aiohttp_server: Any) -> tuple[FakeWeComKfAPI, TestServer]:
    fake = FakeWeComKfAPI()
    return fake, await aiohttp_server(fake.app())


@pytest.fixture
async def wecom_gateway(aiohttp_client: Any, fake_wecom: tuple[FakeWeComAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:
    settings = settings_from_mapping(wecom_config(redis_url, mongo_url, str(fake_wecom[1].make_url(""))), env={})
    return Gateway(await aiohttp_client(build_app(settings)))


@pytest.fixture
async def kf_gateway(aiohttp_client: Any, fake_kf: tuple[FakeWeComKfAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:
    settings = settings_from_mapping(kf_config(redis_url, mongo_url, str(fake_kf[1].make_url(""))), env={})
    return Gateway(await aiohttp_client(build_app(settings)))
