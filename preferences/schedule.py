"""The durable due-list: held messages and digests, in a Redis sorted set by due time.

Members are ``h|<notification_id>`` (a message held through quiet hours) and
``d|<digest_id>``. A worker *claims* due members by moving them, atomically, to a lease
set scored by when the lease runs out; it removes them from there when done. A worker
that dies leaves its leases to expire, and :meth:`DueSchedule.claim` moves expired
leases back first, so another worker (or the restarted one) picks them up. The MongoDB
records are the source of truth: :meth:`NotificationEngine.resync` re-adds what Redis
lost. Two workers can still end up processing one member (a lease that ran out under a
slow worker); the outbox's idempotency keys make the second send a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

DUE_KEY = "kefu:prefs:due"
LEASE_KEY = "kefu:prefs:due:lease"

# Claim what is due (expired leases first) and answer each member with its due time.
_CLAIM = """
-- KEYS[1] due, KEYS[2] lease; ARGV[1] now, ARGV[2] lease until, ARGV[3] limit
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], ARGV[1], m)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], ARGV[2], due[i])
end
return due
"""


class DueSchedule:
    """Claim/ack over the due sorted set; times are the engine clock's Unix seconds."""

    def __init__(self, redis: Redis, *, lease_s: float = 120.0) -> None:
        self.redis = redis
        self.lease_s = lease_s
        self._claim = redis.register_script(_CLAIM)

    async def add(self, member: str, due_at: float) -> None:
        # NX: re-adding (resync, a retried notify) never moves an existing due time.
        await self.redis.zadd(DUE_KEY, {member: due_at}, nx=True)

    async def add_many(self, members: dict[str, float]) -> None:
        if members:
            await self.redis.zadd(DUE_KEY, members, nx=True)

    async def claim(self, now: float, limit: int = 500) -> list[str]:
        return [m for m, _ in await self.claim_scored(now, limit)]

    async def claim_scored(self, now: float, limit: int = 500) -> list[tuple[str, float]]:
        """Like :meth:`claim`, with each member's due time (members sharing one come
        back in member order, which lets the engine read a batch as one range)."""
        raw = await self._claim(keys=[DUE_KEY, LEASE_KEY], args=[now, now + self.lease_s, limit])
        out: list[tuple[str, float]] = []
        for i in range(0, len(raw) - 1, 2):
            m = raw[i]
            out.append((m.decode() if isinstance(m, bytes) else str(m), float(raw[i + 1])))
        return out

    async def ack(self, members: Sequence[str]) -> None:
        if members:
            await self.redis.zrem(LEASE_KEY, *members)

    async def remove(self, members: Sequence[str]) -> None:
        """Drop members from both sets (erasure)."""
        if members:
            await self.redis.zrem(DUE_KEY, *members)
            await self.redis.zrem(LEASE_KEY, *members)

    async def pending(self) -> int:
        return int(await self.redis.zcard(DUE_KEY)) + int(await self.redis.zcard(LEASE_KEY))
