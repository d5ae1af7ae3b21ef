"""The ``kf/sync_msg`` cursor, persisted per KF account, and the lock that guards it.

Implementations that start every sync from an empty cursor get up to three days of
messages again on each restart, or lose track in between. Here the cursor lives in
Redis (next to the durable inbound queue it feeds) under the CorpID and open_kfid, so
it survives restarts and is shared by every worker process. One worker at a time syncs
a KF account: a Redis lease with an owner token, extended as pages go by. The cursor
is written only by the lease holder, atomically with the ownership check, so a worker
that stalled past its lease can never move the cursor back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from bot.errors import KefuError

PREFIX = "kefu:wecom_kf:"

# KEYS[1] lock, KEYS[2] cursor; ARGV[1] owner, ARGV[2] cursor, ARGV[3] lease ms
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SyncLockLost(KefuError):
    """The lease ran out and another worker may be syncing; this one must stop."""

    code = "sync_lock_lost"


class SyncBusy(KefuError):
    """Another worker held the KF account's lease for longer than we wait."""

    code = "sync_busy"


class Lease:
    """Held while one worker syncs one KF account."""

    def __init__(self, state: SyncState, open_kfid: str, owner: str) -> None:
        self._state = state
        self.open_kfid = open_kfid
        self.owner = owner

    async def save_cursor(self, cursor: str) -> None:
        """Persist ``cursor`` and extend the lease; raise ``SyncLockLost`` if not ours."""
        await self._state.save_cursor(self, cursor)


class SyncState:
    def __init__(self, redis: Redis, corp_id: str, *, lease_ms: int = 30_000, wait_s: float = 30.0) -> None:
        self._redis = redis
        self._corp_id = corp_id
        self.lease_ms = lease_ms
        self.wait_s = wait_s
        self._save = redis.register_script(_SAVE)
        self._release = redis.register_script(_RELEASE)

    def _key(self, open_kfid: str, what: str) -> str:
        return f"{PREFIX}{self._corp_id}:{open_kfid}:{what}"

    async def cursor(self, open_kfid: str) -> str:
        value = await self._redis.get(self._key(open_kfid, "cursor"))
        return value.decode() if isinstance(value, bytes) else str(value or "")

    async def save_cursor(self, lease: Lease, cursor: str) -> None:
        keys = [self._key(lease.open_kfid, "lock"), self._key(lease.open_kfid, "cursor")]
        if not await self._save(keys=keys, args=[lease.owner, cursor, self.lease_ms]):
            raise SyncLockLost(f"sync lease of {lease.open_kfid} expired; cursor {cursor!r} not saved")

    @asynccontextmanager
    async def lease(self, open_kfid: str) -> AsyncIterator[Lease]:
        """Hold the KF account's sync lease, waiting up to ``wait_s`` for it.

        Waiting (rather than skipping) matters: the holder may already be past the page
        that would have held the messages this caller was told about.
        """
        key = self._key(open_kfid, "lock")
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_s
        while not await self._redis.set(key, owner, nx=True, px=self.lease_ms):
            if time.monotonic() > deadline:
                raise SyncBusy(f"sync of {open_kfid} busy for over {self.wait_s:.0f} s")
            await asyncio.sleep(0.05)
        try:
            yield Lease(self, open_kfid, owner)
        finally:
            await self._release(keys=[key], args=[owner])
