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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.logs import ref

log = logging.getLogger(__name__)

PENDING_PREFIX = "kefu:conv:pending:"
LOCK_PREFIX = "kefu:conv:lock:"

# A Lua function for every script that lets a conversation's lock go (this module's, the
# end of a worker's turn in bot.end_of_turn): only the holder's token releases it.
RELEASE_LOCK_LUA = """
local function release_lock(lock, token)
  if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
  return 0
end
"""
_RELEASE = RELEASE_LOCK_LUA + "return release_lock(KEYS[1], ARGV[1])"
_TAKE = """
-- KEYS[1] pending list, KEYS[2] lock, KEYS[3..] keys the holder reads with its turn
-- ARGV[1] message key, ARGV[2] token, ARGV[3] lock ttl ms, ARGV[4] '1': take it even if not next
-- returns {taken 0/1, the list's head or '', then when taken each key's value (GET's false
-- for a missing key keeps the list whole and arrives as None)}
local head = redis.call('LINDEX', KEYS[1], 0)
if head and head ~= ARGV[1] and ARGV[4] ~= '1' then return {0, head} end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {0, head or ''} end
local out = {1, head or ''}
for i = 3, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) end
return out
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass(slots=True)
class HeldTurn:
    """A conversation's turn while it is held: its lock and this holder's token. Whoever
    lets the lock go in a script of its own (bot.end_of_turn) sets ``released``, and the
    turn then skips its own release."""

    lock: str
    token: str
    peeked: list[bytes | None]  # the values of turn()'s ``peek`` keys, read with the lock
    released: bool = False


class ConversationGate:
    def __init__(self, redis: Redis, *, lock_ttl_ms: int = 60_000, max_wait_s: float = 10.0, poll_s: float = 0.02) -> None:
        self.redis = redis
        self.lock_ttl_ms = lock_ttl_ms
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._take = redis.register_script(_TAKE)

    @contextlib.asynccontextmanager
    async def turn(self, conversation: str, message_key: str, *, peek: Sequence[str] = ()) -> AsyncIterator[HeldTurn]:
        """Wait until ``message_key`` is next in its conversation and hold the lock.

        Checking the head, taking the lock and reading the ``peek`` keys (what the
        holder reads first anyway: the worker's handled mark and cached state) are one
        script call; nobody else writes the conversation's keys while the lock is held.
        """
        deadline = time.monotonic() + self.max_wait_s
        token = uuid.uuid4().hex
        lock = LOCK_PREFIX + conversation
        while True:
            late = time.monotonic() > deadline
            taken, raw_head, *peeked = await self._take(
                keys=[PENDING_PREFIX + conversation, lock, *peek],
                args=[message_key, token, self.lock_ttl_ms, "1" if late else "0"],
            )
            if taken:
                head = raw_head.decode() if isinstance(raw_head, bytes) else str(raw_head)
                if head and head != message_key:
                    log.warning(
                        "%s: %s waited %.0f s for %s; handling it out of order",
                        ref(conversation), ref(message_key), self.max_wait_s, ref(head),
                    )
                break
            await asyncio.sleep(self.poll_s)
        # The TTL is for dead workers; a live one waiting long (for NLU) keeps its turn.
        renewing = asyncio.create_task(self._keep(lock, token))
        held = HeldTurn(lock, token, peeked)
        try:
            yield held
        finally:
            renewing.cancel()
            if not held.released:
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
