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
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.conversation.ordering import PENDING_PREFIX
from bot.group_commit import commit_isolating
from bot.logs import Outage, Throttle, ref
from bot.messages import InboundMessage

log = logging.getLogger(__name__)

_ENQUEUE = """
-- KEYS[1] stream; then per message: KEYS[2i] dedup key, KEYS[2i+1] conversation's pending list
-- ARGV[1] dedup ttl; then per message: ARGV[2i] payload, ARGV[2i+1] message key
-- returns one flag per message: 1 queued, 0 a retry of one already seen, -1 refused.
-- A message's first write is the one that can fail on its own (its pending list may
-- hold another type); it is made with pcall before anything else of that message, so a
-- refused message leaves nothing behind and the others of the batch go ahead.
local added = {}
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    added[#added + 1] = 0
  else
    local pushed = redis.pcall('RPUSH', KEYS[i + 1], ARGV[i + 1])
    if type(pushed) == 'table' and pushed.err then
      added[#added + 1] = -1
    else
      redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
      redis.call('XADD', KEYS[1], '*', 'm', ARGV[i])
      redis.call('EXPIRE', KEYS[i + 1], ARGV[1])
      added[#added + 1] = 1
    end
  end
end
return added
"""

DEDUP_PREFIX = "kefu:dedup:"
# A message's failed handling attempts (the worker dead-letters it at max_inbound_attempts).
ATTEMPTS_PREFIX = "kefu:inbound:attempts:"


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
        # Entries each consumer of this process read and has not finished: what XAUTOCLAIM
        # hands back from here is a retry of our own, not a takeover from a dead consumer.
        self._mine: dict[str, set[str]] = {}
        self._outages: dict[str, Outage] = {}

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, consumer: str, *, count: int, block_ms: int) -> list[Entry]:
        """Entries for ``consumer``: stale ones left pending first, then new ones."""
        claim: Any = await self.redis.xautoclaim(
            self.stream, self.group, consumer, self.claim_idle_ms, start_id=self._claim_cursor, count=count
        )
        self._claim_cursor = _id(claim[0])
        claimed = [(_id(eid), fields) for eid, fields in claim[1] if fields]
        mine = self._mine.setdefault(consumer, set())
        if claimed:
            own = sum(1 for eid, _ in claimed if eid in mine)
            if own:
                log.info("%s: retrying %d entries this consumer left pending", self.stream, own)
            if own < len(claimed):
                log.warning(
                    "%s: took over %d entries idle for over %d ms from another consumer (dead or stalled)",
                    self.stream, len(claimed) - own, self.claim_idle_ms,
                )
            entries = claimed
        else:
            reply: Any = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
            entries = [(_id(eid), fields) for _stream, items in reply or () for eid, fields in items if fields]
        mine.update(eid for eid, _ in entries)
        for outage in self._outages.values():
            outage.ok()
        return [_entry(eid, fields) for eid, fields in entries]

    async def recover(self, what: str) -> None:
        """Call from an ``except`` around a read loop's step: a stream or group deleted
        under us (FLUSHDB, an operator) is recreated at once; anything else (Redis down)
        is reported once per outage and waited out for a second."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ResponseError) and ("NOGROUP" in str(exc) or "UNBLOCKED" in str(exc)):
            log.warning("%s stream or group vanished (%s); recreating", what, exc)
            await self.ensure_group()
            return
        outage = self._outages.setdefault(what, Outage(log, f"{what} loop on {self.stream}"))
        if exc is not None:
            outage.failed(exc)
        await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def kept(self, consumer: str, entry_id: str) -> AsyncIterator[None]:
        """Keep ``entry_id`` claimed by a live ``consumer`` while the block runs.

        An entry idle for ``claim_idle_ms`` counts as a dead worker's; a message that
        legitimately takes long (waiting for NLU to load, a long voice note) resets
        its idle time every third of that, so that nobody takes it over.
        """
        task = asyncio.create_task(self._keep_claimed(consumer, entry_id))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_claimed(self, consumer: str, entry_id: str) -> None:
        while True:
            await asyncio.sleep(self.claim_idle_ms / 3000)
            try:
                await self.redis.xclaim(self.stream, self.group, consumer, 0, [entry_id], justid=True)
            except Exception as exc:  # the next beat tries again; a lost claim is a retry, not a loss
                log.warning("%s: could not renew the claim on %s (%s)", self.stream, entry_id, type(exc).__name__)

    async def release(self, consumer: str, entry_ids: Sequence[str]) -> None:
        """Make unfinished entries claimable at once (a clean shutdown), not after
        ``claim_idle_ms``: their idle time is set past the threshold."""
        if not entry_ids:
            return
        try:
            await self.redis.xclaim(
                self.stream, self.group, consumer, 0, list(entry_ids), idle=self.claim_idle_ms + 1, justid=True
            )
        except Exception as exc:  # shutting down: they are taken over after claim_idle_ms instead
            log.warning("%s: could not release %d entries (%s)", self.stream, len(entry_ids), type(exc).__name__)

    async def done(self, entry_id: str) -> None:
        """Acknowledge and delete, so the stream holds only work still to do."""
        await self.done_many((entry_id,))

    async def done_many(self, entry_ids: Sequence[str]) -> None:
        """:meth:`done` for several entries in one round trip."""
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            await pipe.execute()
        for entry_id in entry_ids:
            self.forget(entry_id)

    def forget(self, entry_id: str) -> None:
        """Drop a finished entry from this process's own (acknowledged elsewhere: the
        end of a worker's turn does it in its script)."""
        for mine in self._mine.values():
            mine.discard(entry_id)


def _id(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    return Entry(_id(entry_id), fields[b"m"], int(fields.get(b"a", b"0")))


class MessageRefused(RedisError):
    """Redis refused this caller's message (its keys hold data of another type); the
    other messages of the group commit were queued."""


# What one message adds to a group commit: dedup key, pending-list key, payload, key.
_Item = tuple[bytes, bytes, bytes, bytes]


@dataclass(slots=True)
class _Waiter:
    items: list[_Item]
    future: asyncio.Future[int]


# Failures of the connection rather than of one item's data: retrying the items one by
# one cannot help, so the whole batch fails at once and every webhook answers 503.
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)

_repairs = Throttle(log)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis is unreachable (as opposed to refusing one item)."""
    return isinstance(exc, _CONNECTION_ERRORS)


class InboundQueue(StreamGroup):
    def __init__(self, redis: Redis, stream: str, *, dedup_ttl_s: int, claim_idle_ms: int) -> None:
        super().__init__(redis, stream, "workers", claim_idle_ms=claim_idle_ms)
        self._dedup_ttl_s = dedup_ttl_s
        self._enqueue = redis.register_script(_ENQUEUE)
        self._batch: list[_Waiter] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def enqueue(self, messages: Sequence[InboundMessage]) -> int:
        """Queue the messages not seen before (retries are dropped); returns how many were new.

        Webhooks arriving together share one script call (a group commit): each caller
        adds its messages and waits; the first schedules a flush for the next turn of
        the event loop, which sends everything gathered by then. Under load this turns
        N round trips into one; alone it costs one loop iteration.

        One caller's bad data never fails another's: each message is encoded here, in
        its caller's own call (text no encoder accepts is repaired, see
        :func:`bot.messages.safe_text`), and if Redis still refuses the combined call
        for a reason other than the connection, each caller's part is retried alone.

        Raises ``redis.RedisError`` (or ``OSError``) when Redis is unreachable: the
        caller must then not acknowledge the platform, so that it retries.
        """
        if not messages:
            return 0
        items = [self._encode(m) for m in messages]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._batch.append(_Waiter(items, future))
        if len(self._batch) == 1:
            loop.call_soon(self._start_flush)
        return await future

    async def requeue(self, message: InboundMessage) -> bool:
        """Queue a dead-lettered message again (a person retries it once its cause is
        fixed), with its attempts counted afresh. Its dedup mark goes first so that it
        is not taken for a platform's retry; a platform retry arriving in between is
        queued instead of it, never as well. False: it was queued already."""
        await self.redis.delete(DEDUP_PREFIX + message.key, ATTEMPTS_PREFIX + message.key)
        return await self.enqueue([message]) == 1

    @staticmethod
    def _encode(message: InboundMessage) -> _Item:
        try:
            return _item(message)
        except UnicodeEncodeError:
            _repairs.log(
                logging.WARNING, message.channel,
                "%s message %s carried text no encoder accepts (lone surrogates); replaced with U+FFFD",
                message.channel, ref(message.key),
            )
            return _item(message.made_safe())

    def _start_flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: list[_Waiter]) -> None:
        await commit_isolating(batch, self._run_batch, _settle, outage=_CONNECTION_ERRORS, on_split=_split)

    async def _run_batch(self, batch: list[_Waiter]) -> list[int]:
        return await self._run([item for waiter in batch for item in waiter.items])

    async def _run(self, items: list[_Item]) -> list[int]:
        keys: list[bytes | str] = [self.stream]
        args: list[bytes | int] = [self._dedup_ttl_s]
        for dedup, pending, payload, key in items:
            keys += (dedup, pending)
            args += (payload, key)
        return list(await self._enqueue(keys=keys, args=args))


def _item(m: InboundMessage) -> _Item:
    return (
        (DEDUP_PREFIX + m.key).encode(),
        (PENDING_PREFIX + m.conversation).encode(),
        m.to_json().encode(),
        m.key.encode(),
    )


def _split(size: int, exc: BaseException) -> None:
    log.warning("group commit of %d webhooks refused (%s); retrying each alone", size, type(exc).__name__)


def _settle(batch: list[_Waiter], flags: list[int]) -> None:
    offset = 0
    for waiter in batch:
        mine = [int(f) for f in flags[offset : offset + len(waiter.items)]]
        offset += len(waiter.items)
        if waiter.future.done():
            continue
        if -1 in mine:
            waiter.future.set_exception(MessageRefused(f"Redis refused {mine.count(-1)} of {len(mine)} messages"))
        else:
            waiter.future.set_result(sum(mine))
