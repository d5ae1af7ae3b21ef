from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.runtime import RUNTIME, Runtime
from channels.dingtalk.fake_api import FakeDingTalkAPI
from channels.dingtalk.simulator import robot_message, signed_headers

ROBOT: dict[str, Any] = {
    "account": "robot",
    "app_key": "dingappkey001",
    "app_secret": "SECtestsecret",
    "robot_code": "dingappkey001",
    "mode": "http",
}
STREAM: dict[str, Any] = {
    "account": "streamer",
    "app_key": "dingstreamkey",
    "app_secret": "stream-secret",
    "robot_code": "dingstreamkey",
    "mode": "stream",
}


def config(redis_url: str, mongo_url: str, fake_url: str, *accounts: dict[str, Any]) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "pipeline": {"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 4},
        # The channel tests run without Rasa and Whisper: replies come from the echo skill.
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {"dingtalk": [{**a, "api_base_url": fake_url} for a in accounts or (ROBOT,)]},
    }


@dataclass
class DingHarness:
    client: TestClient[Any, Any]
    fake: FakeDingTalkAPI
    fake_url: str

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]

    def webhook(self, conversation: str) -> str:
        return f"{self.fake_url}/robot/sendBySession?session={conversation}.s1"

    async def post(self, data: dict[str, Any], *, account: dict[str, Any] = ROBOT, headers: dict[str, str] | None = None) -> ClientResponse:
        body = json.dumps(data, ensure_ascii=False).encode()
        return await self.client.post(f"/dingtalk/{account['account']}", data=body, headers=headers or signed_headers(account["app_secret"]))

    async def say(self, sender: str, text: str, **kw: Any) -> ClientResponse:
        conversation = kw.pop("conversation_id", f"cid{sender}")
        data = robot_message(sender, text=text, conversation_id=conversation, session_webhook=self.webhook(conversation), **kw)
        return await self.post(data)


@pytest.fixture
async def fake_dingtalk(aiohttp_server: Any) -> AsyncIterator[tuple[FakeDingTalkAPI, TestServer]]:
    fake = FakeDingTalkAPI(secrets={ROBOT["app_key"]: ROBOT["app_secret"], STREAM["app_key"]: STREAM["app_secret"]})
    server = await aiohttp_server(fake.app())
    yield fake, server


@pytest.fixture
async def ding(aiohttp_client: Any, fake_dingtalk: tuple[FakeDingTalkAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> DingHarness:
    fake, server = fake_dingtalk
    url = str(server.make_url("")).rstrip("/")
    settings = settings_from_mapping(config(redis_url, mongo_url, url), env={})
    client = await aiohttp_client(build_app(settings))
    return DingHarness(client=client, fake=fake, fake_url=url)


@pytest.fixture
async def ding_web(aiohttp_client: Any, fake_dingtalk: tuple[FakeDingTalkAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> DingHarness:
    """The webhook without workers: what it enqueues stays in the stream."""
    fake, server = fake_dingtalk
    url = str(server.make_url("")).rstrip("/")
    settings = settings_from_mapping(config(redis_url, mongo_url, url), env={})
    client = await aiohttp_client(build_app(settings, role="web"))
    return DingHarness(client=client, fake=fake, fake_url=url)
