"""The trainer's pages, live: open pages hear of new missed turns, label changes and
corrected transcripts, from any process.

The knowledge package announces each change on :data:`knowledge.news.CHANNEL`; the
console's live hub relays that channel here (:class:`~admin.live.ChannelWatch`). A burst
of announcements (a busy hour's missed turns) is gathered for :data:`GATHER_S`; then the
counts are read once (unlabelled turns, proposed labels, new transcripts) with the
current state of each label that changed, and the same frame goes to every open trainer
page of the process. What a page does with it is its own: the missed-question page
offers a reload when the list changed (grouping is the server's, and a trainer may be
filling in a form), the label page updates the rows it shows in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from admin.live import QUEUE_DEPTH, Frame, LiveHub
from knowledge.news import CHANNEL, LABEL
from knowledge.service import Knowledge
from knowledge.transcripts import NEW

log = logging.getLogger(__name__)

#: How long announcements are gathered before the counts are read again.
GATHER_S = 0.3
MAX_LABELS = 200  # label ids kept from one burst; past that the page reloads its list


@dataclass(eq=False)
class TrainerSubscription:
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))


class TrainerWatch:
    """Relays the trainer's announcements to the open trainer pages of this process."""

    channel = CHANNEL

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self.subscriptions: set[TrainerSubscription] = set()
        self._labels: set[str] = set()
        self._overflow = False
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def subscribe(self) -> TrainerSubscription:
        sub = TrainerSubscription()
        self.subscriptions.add(sub)
        self._refresh_soon()  # what changed between the page's render and now
        return sub

    def unsubscribe(self, sub: TrainerSubscription) -> None:
        self.subscriptions.discard(sub)

    @property
    def active(self) -> bool:
        return bool(self.subscriptions)

    def changed(self, data: bytes) -> None:
        if not self.subscriptions:
            return  # nobody watching: nothing to read
        try:
            news = json.loads(data)
            if news.get("what") == LABEL and news.get("id"):
                if len(self._labels) < MAX_LABELS:
                    self._labels.add(str(news["id"]))
                else:
                    self._overflow = True
        except (ValueError, AttributeError) as exc:
            log.warning("console live: unreadable trainer announcement (%s)", type(exc).__name__)
        self._refresh_soon()

    def resync(self) -> None:
        self._overflow = True  # announcements may be lost: label pages reload their list
        self._refresh_soon()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for sub in list(self.subscriptions):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscriptions.clear()

    def _refresh_soon(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True  # the running refresh reads once more when it is done
            return
        self._task = asyncio.create_task(self._refresh(), name="console-live-trainer")

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(GATHER_S)
            self._again = False
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The pages keep what they show; the next announcement tries again.
                log.warning("console live: trainer counts not read (%s)", type(exc).__name__)
            if not self._again:
                return

    async def publish(self) -> None:
        """Read the counts and the changed labels once; the same frame to every page."""
        ids, self._labels = sorted(self._labels), set()
        overflow, self._overflow = self._overflow, False
        labels = [await self._label(i) for i in ids]
        trail = await self.kb.trail.of(ids) if ids else {}
        frame = Frame({
            "type": "trainer", "sent_at": time.time(), "reload_labels": overflow,
            "unlabelled": await self.kb.missed.unlabelled(), "proposed": await self.kb.labels.count("proposed"),
            "transcripts": await self.kb.transcripts.count(NEW),
            "labels": [{**label, "trail": [_step(e) for e in trail.get(label["id"], [])]} for label in labels if label],
        })
        for sub in list(self.subscriptions):
            try:
                sub.queue.put_nowait(frame)
            except asyncio.QueueFull:
                log.warning("console live: a trainer page fell behind; update dropped")

    async def _label(self, label_id: str) -> dict[str, Any]:
        label = await self.kb.labels.get(label_id)
        if label is None:
            return {}
        return {"id": label.id, "status": label.status, "by": label.by, "reviewed_by": label.reviewed_by}


def _step(event: Any) -> dict[str, Any]:
    return {"at": event.at, "by": event.by, "action": event.action, "before": event.before, "after": event.after}


def watch_trainer(hub: LiveHub, kb: Knowledge | None) -> None:
    """Have the console's hub relay the trainer's announcements (when knowledge is on)."""
    if kb is not None:
        hub.watch(TrainerWatch(kb))


def trainer_watch(hub: LiveHub) -> TrainerWatch | None:
    watch = hub.watches.get(CHANNEL)
    return watch if isinstance(watch, TrainerWatch) else None
