"""The outbox: every message to a customer leaves through here, once.

``enqueue`` puts replies on a Redis stream behind an idempotency key (``SET NX``), in
the same Lua call that marks the inbound message as handled, so a worker that dies and
is replaced cannot queue a reply twice. ``OutboxSender`` delivers them: on success it
records the key as sent before acknowledging the entry, so a reclaimed entry is
recognised and skipped; on timeouts and 5xx it backs off exponentially through a
sorted set of delayed entries; after ``max_attempts`` or on a permanent error (WeChat's
48 h window, 45015) it writes a dead-letter record the console lists.

What "once" means, exactly. A send whose outcome this process knows is never repeated:
if Redis refuses the sent mark (an outage), the sender keeps the outcome in memory and
retries the mark until Redis is back, and no sender of this process touches the entry
meanwhile. What remains is a process dying between the platform accepting a message and
the mark being written: the entry is taken over and sent again. Each process has at
most one send in flight per conversation, so such a crash repeats at most one message
per conversation it was sending to. Platforms with an idempotency key of their own close
that window too; the channels pass one (WeCom ``enable_duplicate_check``, WeCom
customer service ``msgid``, email ``Message-ID``); WeChat and DingTalk have none.

Whoever needs to act when a message cannot be delivered (the notification engine
re-routes it to the customer's next channel) is handed to each ``OutboxSender`` as
``on_give_up``; the sender calls it after the dead-letter record is written. It must be
idempotent: a sender that crashes after giving up may give up on the entry again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.logs import Outage, Throttle, context, ref
from bot.messages import OutboundMessage
from bot.metrics import Metrics
from bot.queue import Entry, StreamGroup
from bot.store import MessageStore
from channels.base import Channel, ChannelLookup
from channels.errors import OutsideServiceWindow, PlatformError

log = logging.getLogger(__name__)

KEY_PREFIX = "kefu:outbox:key:"
SENT_PREFIX = "kefu:outbox:sent:"
HANDLED_PREFIX = "kefu:handled:"
KEY_TTL_S = 7 * 86_400

# A Lua function for every script that queues replies (this module's enqueue, the end of
# a worker's turn in bot.end_of_turn): the idempotency keys are KEYS[first_key..], each
# one's payload the ARGV at the same distance from first_arg.
QUEUE_REPLIES_LUA = """
local function queue_replies(stream, ttl, first_key, first_arg)
  local added = 0
  for i = first_key, #KEYS do
    if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
      redis.call('XADD', stream, '*', 'm', ARGV[first_arg + i - first_key], 'a', '0')
      added = added + 1
    end
  end
  return added
end
"""

_ENQUEUE = QUEUE_REPLIES_LUA + """
-- KEYS[1] outbox stream, KEYS[2] handled marker ('' = none), KEYS[3..] idempotency keys
-- ARGV[1] ttl, ARGV[2..] payloads
local added = queue_replies(KEYS[1], ARGV[1], 3, 2)
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) end
return added
"""

_PROMOTE = """
-- move due delayed entries back onto the stream
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, item in ipairs(due) do
  redis.call('ZREM', KEYS[1], item)
  local sep = string.find(item, '|', 1, true)
  redis.call('XADD', KEYS[2], '*', 'm', string.sub(item, sep + 1), 'a', string.sub(item, 1, sep - 1))
end
return #due
"""


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


# Called with the message, the give-up status ("undeliverable" or "dead") and the reason.
GiveUpHook = Callable[[OutboundMessage, str, str], Awaitable[None]]


class Outbox:
    def __init__(self, redis: Redis, stream: str) -> None:
        self.redis = redis
        self.stream = stream
        self.delayed = stream + ":delayed"
        self._enqueue = redis.register_script(_ENQUEUE)
        self._promote = redis.register_script(_PROMOTE)
        # Keys this process has sent whose sent mark is not yet in Redis (an outage).
        self.unmarked: set[str] = set()
        # One send in flight per conversation in this process: a crash then repeats at
        # most one message per conversation, and replies keep their order across senders.
        self._conversations: dict[str, _Slot] = {}

    @contextlib.asynccontextmanager
    async def conversation_slot(self, conversation: str) -> AsyncIterator[None]:
        slot = self._conversations.get(conversation)
        if slot is None:
            slot = self._conversations[conversation] = _Slot()
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if not slot.users:
                del self._conversations[conversation]

    async def enqueue(self, replies: Sequence[OutboundMessage], *, handled: str = "") -> int:
        """Queue replies not queued before; optionally mark an inbound message handled."""
        keys, payloads = encoded(replies)
        return int(await self._enqueue(
            keys=[self.stream, HANDLED_PREFIX + handled if handled else "", *keys], args=[KEY_TTL_S, *payloads]
        ))

    async def requeue(self, payload: str) -> None:
        """Queue a dead-lettered reply again, past its idempotency key (a person decided
        to retry it; it was never delivered, so it cannot arrive twice)."""
        await self.redis.xadd(self.stream, {"m": payload, "a": "0"})

    @staticmethod
    def handled_key(inbound_key: str) -> str:
        return HANDLED_PREFIX + inbound_key

    async def is_handled(self, inbound_key: str) -> bool:
        return bool(await self.redis.exists(HANDLED_PREFIX + inbound_key))

    async def promote_due(self, now: float | None = None) -> int:
        return int(await self._promote(keys=[self.delayed, self.stream], args=[now or time.time()]))

    async def schedule_retry(self, payload: bytes, attempts: int, delay_s: float) -> None:
        # The attempt count rides in the member so the stream entry can carry it again.
        member = f"{attempts}|".encode() + payload
        await self.redis.zadd(self.delayed, {member: time.time() + delay_s})


_repairs = Throttle(log)


def encoded(replies: Sequence[OutboundMessage]) -> tuple[list[bytes], list[bytes]]:
    """The replies' idempotency keys and payloads, as QUEUE_REPLIES_LUA takes them."""
    pairs = [_encoded(reply) for reply in replies]
    return [key for key, _ in pairs], [payload for _, payload in pairs]


def _encoded(reply: OutboundMessage) -> tuple[bytes, bytes]:
    """(idempotency key, payload) as bytes; a reply whose text no encoder accepts is
    repaired here, alone, instead of failing the batch it is part of (a digest run)."""
    try:
        return (KEY_PREFIX + reply.idempotency_key).encode(), reply.to_json().encode()
    except UnicodeEncodeError:
        _repairs.log(logging.WARNING, "repair", "outbox reply %s carried lone surrogates; replaced with U+FFFD", ref(reply.idempotency_key))
        safe = reply.made_safe()
        return (KEY_PREFIX + safe.idempotency_key).encode(), safe.to_json().encode()


class OutboxSender:
    """Delivers outbox entries through the channels; several may run in many processes."""

    def __init__(
        self,
        outbox: Outbox,
        store: MessageStore,
        channels: ChannelLookup,
        *,
        consumer: str,
        claim_idle_ms: int,
        max_attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        batch: int = 32,
        foreground: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
        on_give_up: GiveUpHook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.outbox = outbox
        self.on_give_up = on_give_up
        self.group = StreamGroup(outbox.redis, outbox.stream, "senders", claim_idle_ms=claim_idle_ms)
        self.store = store
        self.channels = channels
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.batch = batch
        # What a customer is waiting on right now (a send) may ask background CPU work
        # to yield meanwhile: local transcription, see speech.text_first.
        self.foreground = foreground or contextlib.nullcontext
        self._mark_outage = Outage(log, "outbox sent marks (Redis)")
        self.metrics = metrics

    async def run(self, stop: asyncio.Event) -> None:
        await self.group.ensure_group()
        while not stop.is_set():
            try:
                entries = await self.group.read(self.consumer, count=self.batch, block_ms=500)
                if not entries:
                    continue
                runs = _by_conversation(entries)
                batch = _Batch(sent=await self._sent_marks(runs))
                # Conversations are sent side by side, each one's replies in stream order: a
                # text and the image after it must not overtake each other.
                await asyncio.gather(*(self._deliver_in_order(run, batch) for run in runs))
                await self.group.done_many(batch.acks)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self.group.recover("outbox")

    async def _sent_marks(self, runs: list[list[_Pending]]) -> set[str]:
        """The batch's replies already marked sent: one MGET for the batch instead of an
        EXISTS per entry."""
        keys = [parsed.idempotency_key for run in runs for _, _, parsed in run if parsed is not None]
        if not keys:
            return set()
        marks = await self.outbox.redis.mget([SENT_PREFIX + key for key in keys])
        return {key for key, mark in zip(keys, marks) if mark is not None}

    async def _deliver_in_order(self, entries: list[_Pending], batch: _Batch) -> None:
        reply = entries[0][2]
        if reply is None:  # unparsable: a group of its own, dead-lettered by deliver()
            await self.deliver(*entries[0])
            return
        async with self.outbox.conversation_slot(reply.conversation):
            for entry, attempts, parsed in entries:
                await self.deliver(entry, attempts, parsed, batch=batch)

    async def deliver(
        self, entry: Entry, attempts: int, reply: OutboundMessage | None = None, *, batch: _Batch | None = None
    ) -> None:
        """Send one entry; ``reply`` is its payload when the caller parsed it already.
        ``batch``: the read it came with, which knows its sent marks and acknowledges
        its delivered entries together at its end."""
        if reply is None:
            reply = OutboundMessage.from_json(entry.payload)
        key = reply.idempotency_key
        if key in self.outbox.unmarked:
            return  # sent by this process; the task retrying its mark acknowledges it
        if batch is not None:
            already_sent = key in batch.sent
        else:
            already_sent = bool(await self.outbox.redis.exists(SENT_PREFIX + key))
        if already_sent:
            # Delivered by a sender that died before its record and ack: finish both.
            await self.store.mark_outbound(key, "sent", reply=reply)
            await self._delivered(entry, batch)
            self._count(reply, "already_sent")
            return
        with context(conversation=reply.conversation, message=key):
            await self._send(entry, attempts, reply, batch)

    async def _delivered(self, entry: Entry, batch: _Batch | None) -> None:
        # Delivered, marked sent and recorded: the ack may wait for the batch's end (a
        # crash before it leaves an entry whose sent mark makes its takeover a no-op).
        if batch is None:
            await self.group.done(entry.entry_id)
        else:
            batch.acks.append(entry.entry_id)

    async def _send(self, entry: Entry, attempts: int, reply: OutboundMessage, batch: _Batch | None) -> None:
        key = reply.idempotency_key
        channel = self.channels(reply.channel, reply.account)
        attempts += 1
        if channel is None:
            await self._give_up(entry, reply, attempts, f"no channel {reply.channel}/{reply.account} configured")
            return
        try:
            with self.foreground():
                await channel.send(reply)
        except OutsideServiceWindow as exc:
            await self._give_up(entry, reply, attempts, str(exc), status="undeliverable")
            return
        except PlatformError as exc:
            if not exc.retryable:
                await self._give_up(entry, reply, attempts, str(exc))
            elif attempts >= self.max_attempts:
                await self._give_up(entry, reply, attempts, f"gave up after {attempts} attempts: {exc}")
            else:
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempts - 1))
                log.warning("send %s failed (%s); retry %d in %.1f s", ref(key), exc, attempts, delay)
                await self.outbox.schedule_retry(entry.payload, attempts, delay)
                await self.store.mark_outbound(key, "retrying", reply=reply, attempts=attempts, error=str(exc))
                await self.group.done(entry.entry_id)
                self._count(reply, "retry")
            return
        # Sent mark first, then the record, then the ack: a crash after the mark makes a
        # reclaimed entry a no-op instead of a second message.
        await self._mark_sent(key)
        self._count(reply, "sent")
        await self.store.mark_outbound(key, "sent", reply=reply, attempts=attempts, sent_at=time.time())
        await self._delivered(entry, batch)

    def _count(self, reply: OutboundMessage, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.outbox_sends.labels(reply.channel, outcome).inc()

    async def _mark_sent(self, key: str) -> None:
        """Write the sent mark, retrying through a Redis outage: the send happened, and
        giving up here would let the entry be sent again once Redis is back."""
        delay = 0.05
        while True:
            try:
                await self.outbox.redis.set(SENT_PREFIX + key, "1", ex=KEY_TTL_S)
            except (RedisError, OSError) as exc:
                self.outbox.unmarked.add(key)
                self._mark_outage.failed(exc)
                await asyncio.sleep(delay)
                delay = min(0.5, delay * 2)
                continue
            self.outbox.unmarked.discard(key)
            self._mark_outage.ok()
            return

    async def _give_up(
        self, entry: Entry, reply: OutboundMessage, attempts: int, reason: str, *, status: str = "dead"
    ) -> None:
        log.error("outbox %s: %s (%s)", ref(reply.idempotency_key), status, reason)
        self._count(reply, status)
        await self.store.dead_letter(
            kind="outbound", key=reply.idempotency_key, payload=entry.payload.decode(), reason=reason, attempts=attempts
        )
        await self.store.mark_outbound(reply.idempotency_key, status, reply=reply, attempts=attempts, error=reason)
        if self.on_give_up is not None:
            try:
                await self.on_give_up(reply, status, reason)
            except Exception:
                # A failing hook must not wedge the stream: the dead letter is recorded.
                log.exception("give-up hook failed for %s", ref(reply.idempotency_key))
        await self.group.done(entry.entry_id)


_Pending = tuple[Entry, int, OutboundMessage | None]


@dataclass
class _Batch:
    """One read's shared work: its replies already marked sent, its entries to ack."""

    sent: set[str]
    acks: list[str] = field(default_factory=list)


def _by_conversation(entries: list[Entry]) -> list[list[_Pending]]:
    """Entries parsed once and grouped by conversation, stream order kept within each
    group. An entry that does not parse is a group of its own, unparsed: deliver()
    parses it again and gives it up with the parse error."""
    runs: dict[str, list[_Pending]] = {}
    for entry in entries:
        try:
            reply: OutboundMessage | None = OutboundMessage.from_json(entry.payload)
        except (ValueError, KeyError, TypeError):
            reply = None
        key = "c:" + reply.conversation if reply is not None else "e:" + entry.entry_id
        runs.setdefault(key, []).append((entry, entry.attempts, reply))
    return list(runs.values())

