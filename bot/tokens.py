"""Platform access tokens shared by every Kefu process through Redis.

WeChat and WeCom tokens are rate-limited and (for the non-stable endpoint) rotate on
every fetch, so one process must never refresh behind another's back. The token sits in
Redis with a TTL a little shorter than its life, so it is refreshed before it expires;
a refresh happens under a Redis lock with a double check, like aiohttp's
``examples/token_refresh_middleware.py`` does with an asyncio lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

log = logging.getLogger(__name__)

# (token, lifetime in seconds); force=True asks the platform for a new token.
Fetcher = Callable[[bool], Awaitable[tuple[str, int]]]

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenCache:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "kefu:token:",
        margin_s: int = 300,
        lock_timeout_s: float = 15.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._margin_s = margin_s
        self._lock_timeout_s = lock_timeout_s
        self._local: dict[str, tuple[str, float]] = {}
        self._release = redis.register_script(_RELEASE)

    async def get(self, name: str, fetch: Fetcher, *, stale: str | None = None) -> str:
        """A valid token for ``name``.

        Pass ``stale`` (the token the platform just rejected) to force a refresh; if
        another process already replaced it, its new token is used instead.
        """
        if stale is None:
            hit = self._local.get(name)
            if hit and hit[1] > time.monotonic():
                return hit[0]
        key = self._prefix + name
        current = await self._redis.get(key)
        if current is not None and (stale is None or _text(current) != stale):
            return self._remember(name, _text(current), await self._redis.ttl(key))
        return await self._refresh(name, key, fetch, stale)

    async def _refresh(self, name: str, key: str, fetch: Fetcher, stale: str | None) -> str:
        lock_key = key + ":lock"
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            if await self._redis.set(lock_key, owner, nx=True, px=int(self._lock_timeout_s * 1000)):
                break
            # Someone else is refreshing: wait for their token rather than racing them.
            await asyncio.sleep(0.05)
            current = await self._redis.get(key)
            if current is not None and (stale is None or _text(current) != stale):
                return self._remember(name, _text(current), await self._redis.ttl(key))
            if time.monotonic() > deadline:
                raise TimeoutError(f"token {name}: lock held too long by another process")
        try:
            current = await self._redis.get(key)  # double check under the lock
            if current is not None and (stale is None or _text(current) != stale):
                return self._remember(name, _text(current), await self._redis.ttl(key))
            token, lifetime = await fetch(stale is not None)
            ttl = max(1, lifetime - self._margin_s) if lifetime > 2 * self._margin_s else max(1, lifetime // 2)
            await self._redis.set(key, token, ex=ttl)
            log.info("token %s refreshed (valid %d s)", name, lifetime)
            return self._remember(name, token, ttl)
        finally:
            await self._release(keys=[lock_key], args=[owner])

    def _remember(self, name: str, token: str, ttl: int) -> str:
        # A short local memo saves a Redis round trip per call; it never outlives Redis's copy.
        if ttl > 0:
            self._local[name] = (token, time.monotonic() + min(ttl, 60))
        return token


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
