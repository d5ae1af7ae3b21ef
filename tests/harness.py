"""An end-to-end harness: the real gateway app, real Redis and MongoDB, a fake WeChat.

In the spirit of errbot's ``testbot``: push a customer message in through the signed
webhook, read what the customer receives from the fake WeChat API's record of sends.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse, web_app
from aiohttp.test_utils import TestClient

from bot.runtime import RUNTIME, Runtime
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import signed_request, text_xml

SAFE_ACCOUNT: dict[str, Any] = {
    "account": "demo",
    "app_id": "wx0123456789abcdef",
    "app_secret": "test-secret",
    "token": "testtoken123",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}
PLAIN_ACCOUNT: dict[str, Any] = {
    "account": "plain",
    "app_id": "wxfedcba9876543210",
    "app_secret": "plain-secret",
    "token": "plaintoken",
}

_ids = itertools.count(6054768590064713728)


def next_msg_id() -> int:
    return next(_ids)


def forget_served_apps() -> None:
    """Let go of every aiohttp application that has answered a request in this process.

    aiohttp caches each route's middleware chain in one module-level
    ``lru_cache(maxsize=1024)`` keyed by ``(handler, apps)``, so every app that ever
    answered a request stays referenced, with its Runtime, stores, knowledge encoder
    (about 150 MB) and the fake platforms' records. A gateway process serves one app and
    never notices; a test process builds an app per test, and a whole-suite run grew to
    15 GB with gc ever slower over the kept heap. Called after every test (conftest).
    """
    cached = getattr(web_app, "_cached_build_middleware", None)
    if cached is not None:  # gone in an aiohttp without the cache: nothing to forget
        cached.cache_clear()


def gateway_config(redis_url: str, mongo_url: str, fake_url: str, **pipeline: Any) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "pipeline": {"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 4, **pipeline},
        # The core tests run without Rasa and Whisper; tests/conversation brings them.
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {
            "wechat": [
                {**SAFE_ACCOUNT, "api_base_url": fake_url},
                {**PLAIN_ACCOUNT, "api_base_url": fake_url},
            ]
        },
    }


@dataclass
class Harness:
    client: TestClient[Any, Any]
    fake: FakeWeChatAPI
    account: Mapping[str, Any] = field(default_factory=lambda: SAFE_ACCOUNT)

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]

    async def post_xml(self, xml: str, account: Mapping[str, Any] | None = None, **kw: Any) -> ClientResponse:
        account = account or self.account
        query, body = signed_request(account, xml, **kw)
        return await self.client.post(f"/wechat/{account['account']}", params=query, data=body)

    async def say(self, sender: str, text: str, msg_id: int | None = None, account: Mapping[str, Any] | None = None) -> ClientResponse:
        return await self.post_xml(text_xml(sender, text, msg_id or next_msg_id()), account)
