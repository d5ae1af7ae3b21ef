"""Live page updates: conversation events from Redis, fanned out to open pages over SSE.

Each web process holds one Redis pub/sub subscription, whatever the number of open
pages; an event from any process (a worker storing a customer's message, another web
process's claim) reaches every page. Per event the hub reads the message records and
the queue entry once and hands the same payload to every page that shows it. A page
too slow to keep up loses events rather than holding memory; it reloads on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from admin.reasons import reason_words
from bot.conversation.events import CHANNEL, ConversationEvent
from bot.conversation.handoff import WAITING
from bot.conversation.state import QUEUE, StateStore
from bot.store import MessageStore

log = logging.getLogger(__name__)

QUEUE_DEPTH = 256


class Frame:
    """One event as a server-sent-events frame, encoded once per time zone and shared by
    every page that shows it (message times are shown in each user's own zone)."""

    __slots__ = ("payload", "_encoded")

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self._encoded: dict[str, bytes] = {}

    def encode(self, zone: ZoneInfo) -> bytes:
        key = zone.key if self.payload.get("messages") else ""
        frame = self._encoded.get(key)
        if frame is None:
            payload = self.payload
            if key:
                messages = [{**m, "time": datetime.fromtimestamp(m["ts"], zone).strftime("%H:%M:%S")} for m in payload["messages"]]
                payload = {**payload, "messages": messages}
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            frame = self._encoded[key] = f"event: {payload['type']}\ndata: {data}\n\n".encode()
        return frame


@dataclass(eq=False)
class Subscription:
    conversation: str  # "" = the inbox: queue changes of every conversation
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))


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


class LiveHub:
    def __init__(self, redis: Redis, store: MessageStore, states: StateStore, channel: str = CHANNEL) -> None:
        self.redis = redis
        self.store = store
        self.states = states
        self.channel = channel
        self.subscriptions: set[Subscription] = set()
        self.ready = asyncio.Event()

    def subscribe(self, conversation: str = "") -> Subscription:
        sub = Subscription(conversation)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    async def close(self) -> None:
        for sub in list(self.subscriptions):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)  # the page's stream ends
        self.subscriptions.clear()

    async def run(self) -> None:
        """Subscribe and relay until cancelled; resubscribes after a Redis outage."""
        lost = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.ready.set()
                if lost:
                    # Events published while this process was not subscribed are gone:
                    # every open page re-reads what it shows.
                    resync = Frame({"type": "resync", "sent_at": time.time()})
                    for sub in list(self.subscriptions):
                        self._put(sub, resync)
                    lost = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = ConversationEvent.from_json(message["data"])
                    except (ValueError, KeyError, TypeError) as exc:
                        log.warning("console live: unreadable event dropped (%s)", exc)
                        continue
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
        watchers = [s for s in self.subscriptions if s.conversation == event.conversation]
        # The inbox shows the queue: a message matters to it only while the conversation
        # waits; it leaves the queue only through a hand-off event (claim and the rest).
        queue_change = event.kind != "message" or event.owner == QUEUE
        inbox = [s for s in self.subscriptions if not s.conversation] if queue_change else []
        if not watchers and not inbox:
            return
        payload: dict[str, Any] = {
            "type": event.kind, "conversation": event.conversation, "owner": event.owner, "agent": event.agent,
            "at": event.at, "sent_at": time.time(),
        }
        if watchers and event.messages:
            docs = await self.store.messages_by_id(list(event.messages))
            payload["messages"] = [message_view(d) for d in docs]
        frame = Frame(payload)
        for sub in watchers:
            self._put(sub, frame)
        if inbox:
            row = await self.queue_row(event.conversation) if event.owner == QUEUE else None
            summary = Frame({**payload, "messages": [], "waiting": row})
            for sub in inbox:
                self._put(sub, summary)

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

    @staticmethod
    def _put(sub: Subscription, frame: Frame) -> None:
        try:
            sub.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("console live: a page fell behind; event dropped")
