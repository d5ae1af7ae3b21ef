"""Sign-in attempts counted per user name and per address, in Redis (all processes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

PREFIX = "kefu:console:signin:"


@dataclass(frozen=True, slots=True)
class Limits:
    per_user: int = 5
    per_address: int = 20
    window_s: int = 900


@dataclass(frozen=True, slots=True)
class Blocked:
    by: str  # "user" or "address"
    retry_after_s: int


class SignInLimiter:
    """Failed attempts in a fixed window; a success clears the user's count."""

    def __init__(self, redis: Redis, limits: Limits) -> None:
        self.redis = redis
        self.limits = limits

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        # Hashed: the keys should not list who tried to sign in from where.
        return (
            PREFIX + "u:" + hashlib.sha256(user.lower().encode()).hexdigest()[:32],
            PREFIX + "a:" + hashlib.sha256(address.encode()).hexdigest()[:32],
        )

    async def blocked(self, user: str, address: str) -> Blocked | None:
        user_key, address_key = self._keys(user, address)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(user_key)
        pipe.ttl(user_key)
        pipe.get(address_key)
        pipe.ttl(address_key)
        u_count, u_ttl, a_count, a_ttl = await pipe.execute()
        if a_count is not None and int(a_count) >= self.limits.per_address:
            return Blocked("address", max(int(a_ttl), 1))
        if u_count is not None and int(u_count) >= self.limits.per_user:
            return Blocked("user", max(int(u_ttl), 1))
        return None

    async def failed(self, user: str, address: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(user, address):
            pipe.incr(key)
            pipe.expire(key, self.limits.window_s, nx=True)
        await pipe.execute()

    async def succeeded(self, user: str, address: str) -> None:
        await self.redis.delete(self._keys(user, address)[0])
