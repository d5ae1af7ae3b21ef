"""The durable inbound queue: dedup and enqueue in one Redis round trip.

The webhook's only I/O is one ``EVALSHA``: for each message it sets the dedup key with
``NX`` and, only if that succeeded, appends the message to the stream and its key to the
conversation's pending list (which keeps one conversation's messages in order, see
:mod:`bot.conversation.ordering`). Doing both in one
Lua script makes them atomic (two concurrent retries of one message cannot both get
in) and halves the round trips compared to SET then XADD (``bench/bench_ack.py``
measures the ack path).
Workers read the stream through a consumer group; entries a dead worker left pending
are taken over with XAUTOCLAIM.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.conversation.ordering import PENDING_PREFIX
from bot.messages import InboundMessage

log = logging.getLogger(__name__)

_ENQUEUE = """
-- KEYS[1] stream; then per message: KEYS[2i] dedup key, KEYS[2i+1] conversation's pending list
-- ARGV[1] dedup ttl; then per message: ARGV[2i] payload, ARGV[2i+1] message key
-- returns one flag per message: 1 queued, 0 a retry of one already seen
local added = {}
for i = 2, #KEYS, 2 do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[i])
    redis.call('RPUSH', KEYS[i + 1], ARGV[i + 1])
    redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
    added[#added + 1] = 1
  else
    added[#added + 1] = 0
  end
end
return added
"""

DEDUP_PREFIX = "kefu:dedup:"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id (for XACK), the message it carries and how many delivery
    attempts it has had (the outbox's retries re-add an entry with its count)."""

    entry_id: str
    payload: bytes
    attempts: int = 0


class StreamGroup:
    """A Redis stream read by one consumer group, with takeover of stale entries."""

    def __init__(self, redis: Redis, stream: str, group: str, *, claim_idle_ms: int) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.claim_idle_ms = claim_idle_ms
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, *, count: int, block_ms: int) -> list[Entry]:
        """Entries for ``consumer``: stale ones of dead consumers first, then new ones."""
        claim: Any = await self.redis.xautoclaim(
            self.stream, self.group, consumer, self.claim_idle_ms, start_id=self._claim_cursor, count=count
        )
        cursor, claimed = claim[0], claim[1]
        self._claim_cursor = _id(cursor)
        entries = [_entry(eid, fields) for eid, fields in claimed if fields]
        if entries:
            log.warning("%s: took over %d entries from a dead consumer", self.stream, len(entries))
            return entries
        reply: Any = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        for _stream, items in reply or ():
            entries.extend(_entry(eid, fields) for eid, fields in items if fields)
        return entries

    async def recover(self, what: str) -> None:
        """Call from an ``except`` around a read loop's step: a stream or group deleted
        under us (FLUSHDB, an operator) is recreated at once; anything else is logged
        with its traceback and waited out for a second."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ResponseError) and ("NOGROUP" in str(exc) or "UNBLOCKED" in str(exc)):
            log.warning("%s stream or group vanished (%s); recreating", what, exc)
            await self.ensure_group()
            return
        log.exception("%s loop failed; retrying in 1 s", what)
        await asyncio.sleep(1.0)

    async def done(self, entry_id: str) -> None:
        """Acknowledge and delete, so the stream holds only work still to do."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()


def _id(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    return Entry(_id(entry_id), fields[b"m"], int(fields.get(b"a", b"0")))


class InboundQueue(StreamGroup):
    def __init__(self, redis: Redis, stream: str, *, dedup_ttl_s: int, claim_idle_ms: int) -> None:
        super().__init__(redis, stream, "workers", claim_idle_ms=claim_idle_ms)
        self._dedup_ttl_s = dedup_ttl_s
        self._enqueue = redis.register_script(_ENQUEUE)
        self._batch: list[tuple[Sequence[InboundMessage], asyncio.Future[int]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def enqueue(self, messages: Sequence[InboundMessage]) -> int:
        """Queue the messages not seen before (retries are dropped); returns how many were new.

        Webhooks arriving together share one script call (a group commit): each caller
        adds its messages and waits; the first schedules a flush for the next turn of
        the event loop, which sends everything gathered by then. Under load this turns
        N round trips into one; alone it costs one loop iteration.

        Raises ``redis.RedisError`` (or ``OSError``) when Redis is unreachable: the
        caller must then not acknowledge the platform, so that it retries.
        """
        if not messages:
            return 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._batch.append((messages, future))
        if len(self._batch) == 1:
            loop.call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: list[tuple[Sequence[InboundMessage], asyncio.Future[int]]]) -> None:
        keys = [self.stream]
        args: list[str | int] = [self._dedup_ttl_s]
        for messages, _ in batch:
            for m in messages:
                keys += (DEDUP_PREFIX + m.key, PENDING_PREFIX + m.conversation)
                args += (m.to_json(), m.key)
        try:
            flags = await self._enqueue(keys=keys, args=args)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        offset = 0
        for messages, future in batch:
            new = sum(int(f) for f in flags[offset : offset + len(messages)])
            offset += len(messages)
            if not future.done():
                future.set_result(new)
