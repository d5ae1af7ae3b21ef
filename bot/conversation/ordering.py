"""One conversation's messages are handled one at a time, in the order they arrived.

Workers read the stream in batches and several workers run at once, so two messages of
one conversation can be in flight together. The enqueue script appends each new
message's key to its conversation's pending list (in the same Redis round trip as the
dedup and XADD); a worker handles a message only when it heads that list, under a
per-conversation lock, and removes it from the list when done. If the head is stuck
(its worker died and the message was not yet taken over) the follower proceeds after
``max_wait_s`` rather than wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from bot.logs import ref

log = logging.getLogger(__name__)

PENDING_PREFIX = "kefu:conv:pending:"
LOCK_PREFIX = "kefu:conv:lock:"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class ConversationGate:
    def __init__(self, redis: Redis, *, lock_ttl_ms: int = 60_000, max_wait_s: float = 10.0, poll_s: float = 0.02) -> None:
        self.redis = redis
        self.lock_ttl_ms = lock_ttl_ms
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    @contextlib.asynccontextmanager
    async def turn(self, conversation: str, message_key: str) -> AsyncIterator[None]:
        """Wait until ``message_key`` is next in its conversation and hold the lock."""
        deadline = time.monotonic() + self.max_wait_s
        token = uuid.uuid4().hex
        lock = LOCK_PREFIX + conversation
        while True:
            head = await self.redis.lindex(PENDING_PREFIX + conversation, 0)
            is_next = head is None or (head.decode() if isinstance(head, bytes) else str(head)) == message_key
            late = time.monotonic() > deadline
            if (is_next or late) and await self.redis.set(lock, token, nx=True, px=self.lock_ttl_ms):
                if late and not is_next:
                    log.warning(
                        "%s: %s waited %.0f s for %s; handling it out of order",
                        ref(conversation), ref(message_key), self.max_wait_s, ref(head.decode() if isinstance(head, bytes) else str(head)),
                    )
                break
            await asyncio.sleep(self.poll_s)
        # The TTL is for dead workers; a live one waiting long (for NLU) keeps its turn.
        renewing = asyncio.create_task(self._keep(lock, token))
        try:
            yield
        finally:
            renewing.cancel()
            await self._release(keys=[lock], args=[token])

    async def _keep(self, lock: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lock_ttl_ms / 3000)
            try:
                await self._renew(keys=[lock], args=[token, self.lock_ttl_ms])
            except Exception as exc:  # the next beat tries again
                log.warning("could not renew %s (%s)", lock, type(exc).__name__)

    @contextlib.asynccontextmanager
    async def locked(self, conversation: str, timeout_s: float = 10.0) -> AsyncIterator[None]:
        """Hold the conversation's lock (for agents acting outside the message flow)."""
        token = uuid.uuid4().hex
        lock = LOCK_PREFIX + conversation
        deadline = time.monotonic() + timeout_s
        while not await self.redis.set(lock, token, nx=True, px=self.lock_ttl_ms):
            if time.monotonic() > deadline:
                raise TimeoutError(f"conversation {conversation} is busy")
            await asyncio.sleep(self.poll_s)
        try:
            yield
        finally:
            await self._release(keys=[lock], args=[token])

    async def finished(self, conversation: str, message_key: str) -> None:
        await self.redis.lrem(PENDING_PREFIX + conversation, 1, message_key)
