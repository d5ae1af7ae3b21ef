"""Accounts, gateway config and a small harness shared by the WeCom and WeCom KF tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.runtime import RUNTIME, Runtime
from channels.wecom.simulator import signed_callback, text_xml

CORP_ID = "ww0123456789abcdef"

WECOM_ACCOUNT: dict[str, Any] = {
    "account": "corp",
    "corp_id": CORP_ID,
    "agent_id": 1000002,
    "secret": "wecom-app-secret",
    "token": "wecomtoken",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}
KF_ACCOUNT: dict[str, Any] = {
    "account": "kf",
    "corp_id": CORP_ID,
    "secret": "wecom-kf-secret",
    "token": "kftoken",
    "encoding_aes_key": "Kf0123456789abcdefghijklmnopqrstuvwxyzABCDE",
}
OTHER_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"

_ids = itertools.count(7_100_000_000_000_000_001)


def next_msg_id() -> int:
    return next(_ids)


def wecom_config(redis_url: str, mongo_url: str, fake_url: str, **pipeline: Any) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "pipeline": {"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 3, **pipeline},
        "nlu": {"enabled": False},  # replies come from the template skills, no Rasa needed
        "speech": {"enabled": False},
        "channels": {"wecom": [{**WECOM_ACCOUNT, "api_base_url": fake_url}]},
    }


def kf_config(redis_url: str, mongo_url: str, fake_url: str, *, account: Mapping[str, Any] | None = None, **pipeline: Any) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "pipeline": {"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 3, **pipeline},
        "nlu": {"enabled": False},  # replies come from the template skills, no Rasa needed
        "speech": {"enabled": False},
        "channels": {"wecom_kf": [{**(account or KF_ACCOUNT), "api_base_url": fake_url}]},
    }


@dataclass
class Gateway:
    client: TestClient[Any, Any]

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]

    async def post(self, path: str, query: Mapping[str, str], body: bytes) -> ClientResponse:
        return await self.client.post(path, params=dict(query), data=body)

    async def say(self, sender: str, text: str, msg_id: int | None = None) -> ClientResponse:
        query, body = signed_callback(WECOM_ACCOUNT, text_xml(CORP_ID, sender, text, msg_id or next_msg_id()))
        return await self.post("/wecom/corp", query, body)

    async def assert_nothing_kept(self) -> None:
        rt = self.runtime
        assert await rt.store.messages.count_documents({}) == 0
        assert await rt.redis.xlen(rt.queue.stream) == 0
        assert await rt.redis.keys("kefu:dedup:*") == []
