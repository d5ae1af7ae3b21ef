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
from tests.email.conftest import dovecot, mail_gateway, sink  # noqa: F401  (fixtures)
from tests.wecom.conftest import fake_wecom  # noqa: F401  (fixture)
from tests.wecom.support import Gateway, kf_config, wecom_config
from tests.wecom_kf.conftest import fake_kf  # noqa: F401  (fixture)


async def _gateway(aiohttp_client: Any, config: dict[str, Any]) -> Gateway:
    return Gateway(await aiohttp_client(build_app(settings_from_mapping(config, env={}))))


@pytest.fixture
async def wecom_gateway(aiohttp_client: Any, fake_wecom: tuple[FakeWeComAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:  # noqa: F811
    return await _gateway(aiohttp_client, wecom_config(redis_url, mongo_url, str(fake_wecom[1].make_url(""))))


@pytest.fixture
async def kf_gateway(aiohttp_client: Any, fake_kf: tuple[FakeWeComKfAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Gateway:  # noqa: F811
    return await _gateway(aiohttp_client, kf_config(redis_url, mongo_url, str(fake_kf[1].make_url(""))))
