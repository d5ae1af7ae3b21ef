"""Live page updates: conversation events from Redis, fanned out to open pages over SSE.

Each web process holds one Redis pub/sub subscription, whatever the number of open
pages; an event from any process (a worker storing a customer's message, another web
process's claim) reaches every page. Per event the hub reads the message records and
the queue entry once, encodes the frame once (per time zone for message times) and
writes the same bytes to every page that shows it, in one pass from the relay: an open
page costs a socket write per batch, not a task woken up, a timer, a queue and its own
encoding. Inbox pages get the queue's changes gathered over ``INBOX_BATCH_S`` in one
write. A page too slow to keep up has its stream ended rather than held in memory; it
reconnects and catches up from the stores. A process reads events only while it has open
pages (and ``idle_s`` after the last one closed): a web process whose pages are served
elsewhere (``--role console``) spends nothing on them.

Other live pages ride on the same subscription: a :class:`ChannelWatch` names a Redis
channel of its own (the marketers' activity counts, for one) and the hub hands it what
arrives there; while a watch has pages open the process keeps listening. :func:`stream`
writes such a page's frames from a queue as server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web
from redis.asyncio import Redis

from admin.reasons import reason_words
from bot.conversation.events import CHANNEL, ConversationEvent
from bot.conversation.handoff import WAITING
from bot.conversation.state import QUEUE, StateStore
from bot.store import MessageStore

log = logging.getLogger(__name__)

QUEUE_DEPTH = 256  # frames a queue-fed page (see stream()) may have waiting
INBOX_BATCH_S = 0.25  # queue rows reach inbox pages at most this late, gathered into one write
HEARTBEAT_S = 15.0  # a comment line keeps proxies from closing a quiet stream
#: Pages written to in one go before the event loop gets a turn: a write to every open
#: inbox at once held the webhook's acknowledgements back by about a millisecond.
WRITE_SLICE = 32
#: Conversations whose last event time is kept for pages that open late (:meth:`LiveHub.catch_up`).
RECENT_CONVERSATIONS = 4096
MAX_UNSENT = 256 * 1024  # bytes a page may leave unread before its stream is ended


class Wire:
    """Bytes ready for a page's connection: as they are (HTTP/1.0) or as one chunk of a
    chunked HTTP/1.1 body, framed once and shared by every page."""

    __slots__ = ("raw", "_chunk")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._chunk: bytes | None = None

    @property
    def chunk(self) -> bytes:
        if self._chunk is None:
            self._chunk = b"%x\r\n%b\r\n" % (len(self.raw), self.raw)
        return self._chunk


PING = Wire(b": ping\n\n")


class Frame:
    """One event as a server-sent-events frame, encoded once per time zone and shared by
    every page that shows it (message times are shown in each user's own zone)."""

    __slots__ = ("payload", "_encoded")

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self._encoded: dict[str, Wire] = {}

    def encode(self, zone: ZoneInfo | None = None) -> Wire:
        key = zone.key if zone is not None and self.payload.get("messages") else ""
        wire = self._encoded.get(key)
        if wire is None:
            payload = self.payload
            if key and zone is not None:
                messages = [{**m, "time": datetime.fromtimestamp(m["ts"], zone).strftime("%H:%M:%S")} for m in payload["messages"]]
                payload = {**payload, "messages": messages}
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            wire = self._encoded[key] = Wire(f"event: {payload['type']}\ndata: {data}\n\n".encode())
        return wire


class PageStream:
    """One open page's event stream: the hub writes to its connection directly.

    The response must have sent its headers (a first write) before the hub writes here.
    ``ended`` resolves when the stream should close: the page went away or fell behind,
    or the server shuts down.
    """

    __slots__ = ("conversation", "zone", "_transport", "_chunked", "ended")

    def __init__(self, conversation: str, zone: ZoneInfo, transport: asyncio.Transport, *, chunked: bool) -> None:
        self.conversation = conversation  # "" = the inbox: queue changes of every conversation
        self.zone = zone
        self._transport = transport
        self._chunked = chunked
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(self, wire: Wire) -> None:
        if self.ended.done():
            return
        transport = self._transport
        if transport.is_closing():
            self.end()
        elif transport.get_write_buffer_size() > MAX_UNSENT:
            log.warning("console live: a page fell behind; its stream ends and it catches up on reconnect")
            self.end()
        else:
            transport.write(wire.chunk if self._chunked else wire.raw)

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


def message_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields of a message record a page shows (no raw platform payload)."""
    transcript = doc.get("transcript") or {}
    return {
        "id": str(doc["_id"]),
        "direction": doc.get("direction", ""),
        "kind": doc.get("kind", ""),
        "text": doc.get("text") or "",
        "ts": doc.get("ts") or 0.0,
        "status": doc.get("status", ""),
        "event": doc.get("event") or "",
        "transcript": transcript.get("text", ""),
        "confidence": transcript.get("confidence"),
        "has_media": doc.get("kind") in ("voice", "image") and bool(doc.get("media")),
        # Who wrote it: the customer, an agent through the console, or the bot (including
        # the hand-off's own notices), told apart by the reply's idempotency key.
        "author": "customer" if doc.get("direction") == "in" else "agent" if str(doc["_id"]).startswith("out:agent:") else "bot",
    }


class ChannelWatch(Protocol):
    """A live page's own Redis channel, relayed by the hub's one subscription."""

    channel: str

    @property
    def active(self) -> bool:
        """Pages are open: the process must go on listening."""

    def changed(self, data: bytes) -> None:
        """A message arrived (must not block: the hub's relay waits for it)."""

    def resync(self) -> None:
        """Messages may have been missed (the subscription was lost for a while)."""

    def close(self) -> None:
        """The process shuts down: end the open streams."""


class LiveHub:
    def __init__(
        self, redis: Redis, store: MessageStore, states: StateStore, channel: str = CHANNEL, *, idle_s: float = 60.0
    ) -> None:
        self.redis = redis
        self.store = store
        self.states = states
        self.channel = channel
        self.idle_s = idle_s
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self.watching: dict[str, set[PageStream]] = {}  # conversation -> its open pages
        self.inbox: set[PageStream] = set()
        self.ready = asyncio.Event()
        self._pending: list[Frame] = []  # for inbox pages, until the next batch goes out
        self._flush: asyncio.TimerHandle | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self.watches: dict[str, ChannelWatch] = {}
        # For pages whose stream opens after their render (:meth:`catch_up`), in wall-clock
        # time as the page's render and the event's publisher saw it: since when this
        # process has been subscribed without a gap, when the queue last changed, and when
        # each recent conversation last had an event.
        self.listening_since = 0.0
        self.queue_changed_at = 0.0
        self._recent: OrderedDict[str, float] = OrderedDict()
        # Writes to many pages, in order, a slice per loop turn (:meth:`_broadcast`).
        self._outgoing: deque[tuple[list[PageStream], Wire]] = deque()
        self._writer: asyncio.Task[None] | None = None

    def watch(self, watch: ChannelWatch) -> None:
        """Relay ``watch.channel`` too; before the first page opens."""
        self.watches[watch.channel] = watch

    @property
    def streams(self) -> int:
        return len(self.inbox) + sum(len(s) for s in self.watching.values())

    def start(self) -> None:
        """Listen from the start, as if a page had just closed: a page opened right after
        a restart finds the subscription in place."""
        self._listen()
        self._idle_timer()

    async def listening(self, timeout_s: float = 2.0) -> None:
        """Subscribed (or ``timeout_s`` passed: Redis is away and the pages are told to
        resync when it is back), so that a page sees every event after its stream opens."""
        self._listen()
        self._idle_timer()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.ready.wait()

    async def stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.ready.clear()

    def _listen(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="console-live")

    def _idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(self.idle_s, self._stop_if_idle) if not self.streams else None

    def _stop_if_idle(self) -> None:
        self._idle = None
        if any(w.active for w in self.watches.values()):
            self._idle_timer()  # a watched page is open: look again later
            return
        if not self.streams and self._task is not None:
            # Nobody to tell: events meanwhile concern no page of this process.
            self._task.cancel()
            self._task = None
            self.ready.clear()

    def attach(self, stream: PageStream) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._listen()
        if stream.conversation:
            self.watching.setdefault(stream.conversation, set()).add(stream)
        else:
            self.inbox.add(stream)
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().call_later(HEARTBEAT_S, self._ping)

    def catch_up(self, stream: PageStream, rendered_at: float) -> None:
        """Tell a page whose stream opened only now to re-read what it shows, if it may
        have missed something since it was rendered at ``rendered_at``: an event about
        what it shows (its conversation, or the queue for the inbox) was published after
        that, or this process was not subscribed then (its idle unsubscription, a Redis
        outage). Events are not replayed; the page's own catch-up (the same as after a
        reconnect) is one read, and the page asks at most once in a while
        (``console.js``), so a busy queue cannot keep an inbox reloading."""
        if rendered_at <= 0:
            return  # a stream opened without a page (a script): nothing to catch up
        if stream.conversation:
            changed = self._recent.get(stream.conversation, 0.0)
        else:
            changed = self.queue_changed_at
        if changed > rendered_at or self.listening_since > rendered_at:
            self._send([stream], Frame({"type": "resync", "sent_at": time.time()}).encode())

    def _seen(self, event: ConversationEvent) -> None:
        if event.kind != "message" or event.owner == QUEUE:
            self.queue_changed_at = max(self.queue_changed_at, event.at)
        self._recent[event.conversation] = event.at
        self._recent.move_to_end(event.conversation)
        if len(self._recent) > RECENT_CONVERSATIONS:
            self._recent.popitem(last=False)  # the oldest: its page would have opened long ago

    def detach(self, stream: PageStream) -> None:
        stream.end()
        if not stream.conversation:
            self.inbox.discard(stream)
        else:
            pages = self.watching.get(stream.conversation)
            if pages is not None:
                pages.discard(stream)
                if not pages:
                    del self.watching[stream.conversation]
        if not self.streams and self._idle is None and self._task is not None:
            self._idle_timer()

    async def close(self) -> None:
        for stream in self._all():
            stream.end()  # the page's stream ends
        self.watching.clear()
        self.inbox.clear()
        for timer in (self._flush, self._heartbeat):
            if timer is not None:
                timer.cancel()
        self._flush = self._heartbeat = None
        self._pending.clear()
        self._outgoing.clear()
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        for watch in self.watches.values():
            watch.close()

    async def run(self) -> None:
        """Subscribe and relay until cancelled; resubscribes after a Redis outage."""
        lost = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel, *self.watches)
                self.listening_since = time.time()
                self.ready.set()
                if lost:
                    # Events published while this process was not subscribed are gone:
                    # every open page re-reads what it shows.
                    self._broadcast(self._all(), Frame({"type": "resync", "sent_at": time.time()}).encode())
                    for watch in self.watches.values():
                        watch.resync()
                    lost = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    name = message.get("channel")
                    watched = self.watches.get(name.decode() if isinstance(name, bytes) else str(name))
                    if watched is not None:
                        watched.changed(message["data"])
                        continue
                    try:
                        event = ConversationEvent.from_json(message["data"])
                    except (ValueError, KeyError, TypeError) as exc:
                        log.warning("console live: unreadable event dropped (%s)", exc)
                        continue
                    self._seen(event)
                    await self.relay(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.ready.clear()
                lost = True
                log.warning("console live: subscription lost (%s); resubscribing in 1 s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def relay(self, event: ConversationEvent) -> None:
        watchers = self.watching.get(event.conversation)
        # The inbox shows the queue: a message matters to it only while the conversation
        # waits; it leaves the queue only through a hand-off event (claim and the rest).
        queue_change = bool(self.inbox) and (event.kind != "message" or event.owner == QUEUE)
        if not watchers and not queue_change:
            return
        payload: dict[str, Any] = {
            "type": event.kind, "conversation": event.conversation, "owner": event.owner, "agent": event.agent,
            "at": event.at, "sent_at": time.time(),
        }
        if watchers and event.messages:
            docs = await self.store.messages_by_id(list(event.messages))
            payload["messages"] = [message_view(d) for d in docs]
        if watchers:
            frame = Frame(payload)
            # Still open after the read above? A page may have closed meanwhile.
            for stream in list(self.watching.get(event.conversation, ())):
                stream.send(frame.encode(stream.zone))
        if queue_change:
            row = await self.queue_row(event.conversation) if event.owner == QUEUE else None
            self._pending.append(Frame({**payload, "messages": [], "waiting": row}))
            if self._flush is None:
                # With many agents online each event would be one write per open inbox;
                # a queue row a quarter of a second later is soon enough.
                self._flush = asyncio.get_running_loop().call_later(INBOX_BATCH_S, self._flush_inbox)

    def _flush_inbox(self) -> None:
        self._flush = None
        frames, self._pending = self._pending, []
        if frames:
            self._broadcast(list(self.inbox), Wire(b"".join(f.encode().raw for f in frames)))

    def _ping(self) -> None:
        streams = self._all()
        self._broadcast(streams, PING)  # also finds the pages that went away
        self._heartbeat = asyncio.get_running_loop().call_later(HEARTBEAT_S, self._ping) if self.streams else None

    def _all(self) -> list[PageStream]:
        return [*self.inbox, *(s for pages in self.watching.values() for s in pages)]

    @staticmethod
    def _send(streams: list[PageStream], wire: Wire) -> None:
        for stream in streams:
            stream.send(wire)

    def _broadcast(self, streams: list[PageStream], wire: Wire) -> None:
        """Write ``wire`` to many pages, :data:`WRITE_SLICE` per loop turn, so that the
        requests this process also serves are not held back; one writer keeps the
        broadcasts in order, so every page gets its frames in the order they were made."""
        if len(streams) <= WRITE_SLICE and not self._outgoing:
            self._send(streams, wire)
            return
        self._outgoing.append((streams, wire))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_out(), name="console-live-writer")

    async def _write_out(self) -> None:
        while self._outgoing:
            streams, wire = self._outgoing.popleft()
            for start in range(0, len(streams), WRITE_SLICE):
                self._send(streams[start:start + WRITE_SLICE], wire)
                await asyncio.sleep(0)

    async def queue_row(self, conversation: str) -> dict[str, Any] | None:
        since = await self.redis.zscore(WAITING, conversation)
        state = await self.states.get(conversation)
        if since is None or state is None:
            return None
        return {
            "conversation": conversation, "waiting_since": float(since), "reason": state.handoff_reason,
            "reason_code": state.handoff_code, "reason_params": state.handoff_params,
            "reason_words": reason_words(state.handoff_reason, state.handoff_code, state.handoff_params),
            "customer": state.customer, "channel": state.channel, "language": state.language,
        }


async def stream(
    request: web.Request, queue: asyncio.Queue[Frame | None], zone: ZoneInfo, *, done: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """Write the frames put on ``queue`` as server-sent events until a None or the page
    goes away, with a heartbeat when quiet; ``done`` runs at the end (the unsubscription).

    For pages fed by a :class:`ChannelWatch`; conversation pages are written by the hub
    itself (:class:`PageStream`)."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: live\n\n")
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    frame = await queue.get()
            except TimeoutError:
                await response.write(PING.raw)
                continue
            # Whatever else queued up meanwhile goes out in the same write.
            frames = [frame]
            while frames[-1] is not None and not queue.empty():
                frames.append(queue.get_nowait())
            chunk = b"".join(f.encode(zone).raw for f in frames if f is not None)
            if chunk:
                await response.write(chunk)
            if frames[-1] is None:
                break
    except ConnectionResetError:
        pass  # the page went away
    finally:
        if done is not None:
            done()
    return response
