"""The outbox against the fake WeChat API: retries, dead letters, the 48 h window, tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from redis.asyncio import Redis

from bot.tokens import TokenCache
from channels.wechat.client import WeChatClient
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness


async def wait_status(gateway: Harness, recipient: str, status: str, timeout_s: float = 10.0) -> dict[str, Any]:
    store = gateway.runtime.store
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        doc = await store.messages.find_one({"direction": "out", "recipient": recipient})
        if doc and doc["status"] == status:
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbound to {recipient} never reached {status}: {doc}")


async def test_5xx_is_retried_with_backoff_then_sent_once(gateway: Harness) -> None:
    gateway.fake.fail_next(2, status=502)
    await gateway.say("oFlaky", "hello")
    doc = await wait_status(gateway, "oFlaky", "sent")
    assert doc["attempts"] == 3
    assert len(gateway.fake.sent_to("oFlaky")) == 1


async def test_timeout_is_retried(gateway: Harness) -> None:
    # The account's client times out after 10 s by default; a reset connection is the
    # same class of failure and faster to provoke: status 503.
    gateway.fake.fail_next(1, status=503)
    await gateway.say("oTimeout", "hello")
    await wait_status(gateway, "oTimeout", "sent")
    assert len(gateway.fake.sent_to("oTimeout")) == 1


async def test_outside_48h_window_is_kept_and_reported_not_retried(gateway: Harness) -> None:
    gateway.fake.fail_next(1, errcode=45015)
    calls_before = gateway.fake.send_calls
    await gateway.say("oGone", "hello")
    doc = await wait_status(gateway, "oGone", "undeliverable")
    assert "45015" in doc["error"]
    await asyncio.sleep(0.5)
    assert gateway.fake.send_calls - calls_before == 1  # no retries
    dead = await gateway.runtime.store.dead_letters.find_one({"key": doc["_id"].removeprefix("out:")})
    assert dead is not None and "45015" in dead["reason"]


async def test_persistent_failure_ends_in_dead_letter(gateway: Harness) -> None:
    gateway.fake.fail_next(10, status=500)
    await gateway.say("oDead", "hello")
    doc = await wait_status(gateway, "oDead", "dead")
    assert doc["attempts"] == 4  # outbox_max_attempts in the harness
    assert await gateway.runtime.store.dead_letters.count_documents({"kind": "outbound"}) == 1
    assert gateway.fake.sent_to("oDead") == []


async def test_rejected_token_refreshed_once_and_retried(gateway: Harness) -> None:
    await gateway.say("oTok1", "first")
    await wait_status(gateway, "oTok1", "sent")
    tokens_before = gateway.fake.token_calls
    gateway.fake.revoke_tokens()  # as if another system had forced a new token
    await gateway.say("oTok2", "second")
    doc = await wait_status(gateway, "oTok2", "sent")
    assert doc["attempts"] == 1  # the refresh happened inside one attempt
    assert gateway.fake.token_calls == tokens_before + 1


async def test_concurrent_token_refresh_fetches_once(aiohttp_server: Any, redis: Redis) -> None:
    fake = FakeWeChatAPI()
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        # Two "processes": separate caches and clients, one Redis.
        clients = [
            WeChatClient(session, TokenCache(redis), app_id="wxA", app_secret="s", base_url=str(server.make_url("")))
            for _ in range(2)
        ]
        tokens = await asyncio.gather(*(clients[i % 2].access_token() for i in range(40)))
    assert len(set(tokens)) == 1
    assert fake.token_calls == 1
    assert await redis.ttl("kefu:token:wechat:wxA") > 6000  # refreshed 5 min before expiry


async def test_bad_secret_is_a_permanent_error(aiohttp_server: Any, redis: Redis) -> None:
    import pytest

    from channels.errors import PermanentSendError

    fake = FakeWeChatAPI(secrets={"wxA": "right"})
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        client = WeChatClient(session, TokenCache(redis), app_id="wxA", app_secret="wrong", base_url=str(server.make_url("")))
        with pytest.raises(PermanentSendError, match="40125"):
            await client.access_token()
