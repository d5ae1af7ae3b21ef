"""Fixtures for the business skills: fake outside systems on loopback, the gateway with
real Rasa, real Redis and MongoDB, wired to the fakes through ``connectors:``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.dingtalk.fake_api import FakeDingTalkAPI
from channels.wechat.fake_api import FakeWeChatAPI
from skills.connectors.fakes import FakeAmazon, FakeCoupons, FakeErp, FakeServiceNow, FakeShopee, FakeTemu
from skills.demo import load_demo
from skills.services import SKILL_SERVICES, SkillServices
from tests.harness import Harness, gateway_config

API_KEY = "skills-test-key"
SN_USER, SN_PASSWORD = "kefu", "sn-secret"


@dataclass
class Fakes:
    erp: FakeErp = field(default_factory=FakeErp)
    servicenow: FakeServiceNow = field(default_factory=lambda: FakeServiceNow(user=SN_USER, password=SN_PASSWORD))
    dingtalk: FakeDingTalkAPI = field(default_factory=FakeDingTalkAPI)
    coupons: FakeCoupons = field(default_factory=FakeCoupons)
    amazon: FakeAmazon = field(default_factory=FakeAmazon)
    shopee: FakeShopee = field(default_factory=FakeShopee)
    temu: FakeTemu = field(default_factory=FakeTemu)
    urls: dict[str, str] = field(default_factory=dict)

    def connectors(self) -> dict[str, Any]:
        u = self.urls
        return {
            "erp": {"base_url": u["erp"], "token": "erp-token", "timeout_s": 2},
            "servicenow": {"base_url": u["servicenow"], "username": SN_USER, "password": SN_PASSWORD, "timeout_s": 2},
            "dingtalk_todo": {"base_url": u["dingtalk"], "app_key": "todo-app", "app_secret": "s", "union_id": "svc", "timeout_s": 2},
            "coupons": {"base_url": u["coupons"], "timeout_s": 2},
            "amazon": {"base_url": u["amazon"], "timeout_s": 2},
            "shopee": {"base_url": u["shopee"], "timeout_s": 2},
            "temu": {"base_url": u["temu"], "timeout_s": 2},
        }


@pytest.fixture
async def fakes(aiohttp_server: Any) -> AsyncIterator[Fakes]:
    f = Fakes()
    for name in ("erp", "servicenow", "dingtalk", "coupons", "amazon", "shopee", "temu"):
        server: TestServer = await aiohttp_server(getattr(f, name).app())
        f.urls[name] = str(server.make_url("")).rstrip("/")
    yield f


@pytest.fixture
async def fake_wechat(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeChatAPI, TestServer]]:
    fake = FakeWeChatAPI()
    yield fake, await aiohttp_server(fake.app())


def skills_config(redis_url: str, mongo_url: str, wechat_url: str, fakes: Fakes, data_dir: Path, *, nlu_urls: list[str] | None = None) -> dict[str, Any]:
    cfg = gateway_config(redis_url, mongo_url, wechat_url, workers=2)
    cfg["data_dir"] = str(data_dir)
    cfg["connectors"] = fakes.connectors()
    cfg["repair"] = {"retry_base_s": 0.2, "retry_max_s": 1.0, "retry_check_s": 0.1}
    cfg["renewal"] = {"daily": False}
    cfg["reviews"] = {"pull_interval_s": 3600}
    cfg["api"] = {"keys": [{"key": API_KEY, "scopes": ["repair:read", "repair:write", "renewal:read", "renewal:write", "reviews:read", "reviews:write", "prefs:read", "prefs:write"]}]}
    if nlu_urls:
        cfg["nlu"] = {"enabled": True, "urls": nlu_urls, "autostart": False, "timeout_s": 5.0, "reset_after_s": 0.5}
    return cfg


@dataclass
class SkillChat:
    """Say something through the signed WeChat webhook; read texts and images sent back."""

    harness: Harness
    sender: str

    async def say(self, text: str, *, expect: int = 1, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        before = len(self.harness.fake.sent_to(self.sender))
        resp = await self.harness.say(self.sender, text)
        assert resp.status == 200
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.harness.fake.sent_to(self.sender)) < before + expect:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        return self.harness.fake.sent_to(self.sender)[before:]

    @staticmethod
    def texts(sent: list[dict[str, Any]]) -> str:
        return "\n".join(s["text"]["content"] for s in sent if s.get("msgtype") == "text")


@pytest.fixture
async def gateway(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], fakes: Fakes,
    redis_url: str, mongo_url: str, rasa_url: str, tmp_path: Path,  # noqa: F811
) -> Harness:
    cfg = skills_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")), fakes, tmp_path, nlu_urls=[rasa_url])
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    harness = Harness(client=client, fake=fake_wechat[0])
    await load_demo(harness.runtime.store.db)
    return harness


@pytest.fixture
async def plain_gateway(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], fakes: Fakes, redis_url: str, mongo_url: str, tmp_path: Path
) -> Harness:
    """The gateway without Rasa: for the APIs, jobs and imports."""
    cfg = skills_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")), fakes, tmp_path)
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    harness = Harness(client=client, fake=fake_wechat[0])
    await load_demo(harness.runtime.store.db)
    return harness


def services(h: Harness) -> SkillServices:
    return h.client.app[SKILL_SERVICES]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def bind_identity(identity: str) -> dict[str, Any]:
    """Point demo customer C-1001 at a test's own WeChat sender."""
    return {"$addToSet": {"identities": identity}}
