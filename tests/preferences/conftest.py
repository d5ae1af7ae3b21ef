"""Fixtures: a preference store and a notification engine on real Redis and MongoDB,
with a manual clock that tests move forward."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.messages import OutboundMessage
from bot.outbox import Outbox
from bot.store import MessageStore
from channels.base import Channel, ChannelContext, Received, WebhookRequest
from channels.wechat.fake_api import FakeWeChatAPI
from preferences.clock import ManualClock
from preferences.engine import NotificationEngine
from preferences.render import Renderer
from preferences.store import PreferenceStore
from tests.harness import Harness, gateway_config

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
OUTBOX_STREAM = "kefu:outbox"


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()  # reads the templates from disk: outside the event loop


@pytest.fixture
def clock() -> ManualClock:
    # A Monday, 10:00 in Shanghai: outside the default quiet hours (22:00-08:00).
    return ManualClock(dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
async def prefs(mongo: AsyncMongoClient[Any], redis: Redis, clock: ManualClock) -> PreferenceStore:
    store = PreferenceStore(mongo.get_default_database(), clock, redis=redis)
    await store.ensure_indexes()
    return store


@pytest.fixture
def outbox(redis: Redis) -> Outbox:
    return Outbox(redis, OUTBOX_STREAM)


@pytest.fixture
async def engine(
    mongo: AsyncMongoClient[Any], redis: Redis, outbox: Outbox, prefs: PreferenceStore, renderer: Renderer, clock: ManualClock
) -> AsyncIterator[NotificationEngine]:
    db = mongo.get_default_database()
    eng = NotificationEngine(db, redis, outbox, prefs, renderer, clock=clock, message_store=MessageStore(db), lease_s=60)
    await eng.ensure_indexes()
    yield eng


async def outbox_messages(redis: Redis) -> list[dict[str, Any]]:
    """Everything queued in the outbox stream, decoded."""
    import json

    entries = await redis.xrange(OUTBOX_STREAM)
    return [json.loads(fields[b"m"]) for _id, fields in entries]


WECHAT_CUSTOMER: dict[str, Any] = {
    "channels": ["wechat", "email"],
    "addresses": {"wechat": {"account": "demo", "openid": "oCust1"}, "email": {"address": "li.lei@example.cn"}},
}


API_KEYS = {
    "crm": {"key": "crm-key-0123456789", "scopes": ["prefs:read", "prefs:write", "notify", "data:export", "data:erase"]},
    "reader": {"key": "reader-key-0123456789", "scopes": ["prefs:read"]},
    "marketer": {"key": "marketer-key-0123456789", "scopes": ["marketing", "prefs:read"]},
}


class RecordingChannel(Channel):
    """A stand-in email channel that records what it is asked to send."""

    name = "email"

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.sent: list[OutboundMessage] = []

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> RecordingChannel:
        return cls(str(section["account"]))

    def receive(self, request: WebhookRequest) -> Received:
        raise NotImplementedError

    async def send_text(self, reply: OutboundMessage) -> None:
        self.sent.append(reply)

    async def wait_sent(self, count: int, timeout_s: float = 10.0) -> list[OutboundMessage]:
        for _ in range(int(timeout_s / 0.05)):
            if len(self.sent) >= count:
                break
            await asyncio.sleep(0.05)
        return self.sent


@pytest.fixture
async def fake_wechat(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeChatAPI, TestServer]]:
    fake = FakeWeChatAPI()
    server = await aiohttp_server(fake.app())
    yield fake, server


@pytest.fixture
async def gateway(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Redis
) -> tuple[Harness, RecordingChannel]:
    """The whole gateway (real outbox, fake WeChat API) with the preferences API and an
    email channel that records sends."""
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")))
    cfg["api"] = {"keys": list(API_KEYS.values())}
    cfg["preferences"] = {"due_interval_s": 0.1}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    harness = Harness(client=client, fake=fake)
    email = RecordingChannel("support")
    harness.runtime.channels[("email", "support")] = email
    return harness, email


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEYS[who]['key']}"}
