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

import json
import logging
import time
from typing import Any

from admin.live import Frame, LiveHub
from admin.live_watch import GatheredWatch, Subscription
from knowledge.news import CHANNEL, LABEL
from knowledge.service import Knowledge
from knowledge.transcripts import NEW

log = logging.getLogger(__name__)

#: How long announcements are gathered before the counts are read again.
GATHER_S = 0.3
MAX_LABELS = 200  # label ids kept from one burst; past that the page reloads its list


class TrainerWatch(GatheredWatch[str]):
    """Relays the trainer's announcements to the open trainer pages of this process.

    Every trainer page sees the same figures, so there is one view; what changed since
    the last frame (the label ids announced) rides along in it."""

    channel = CHANNEL
    what = "trainer page"
    gather_s = GATHER_S

    def __init__(self, kb: Knowledge) -> None:
        super().__init__()
        self.kb = kb
        self._labels: set[str] = set()
        self._overflow = False

    def subscribe(self, view: str = "trainer") -> Subscription[str]:
        return super().subscribe(view)

    def changed(self, data: bytes) -> None:
        if self.subscriptions and data:
            try:
                news = json.loads(data)
                if news.get("what") == LABEL and news.get("id"):
                    if len(self._labels) < MAX_LABELS:
                        self._labels.add(str(news["id"]))
                    else:
                        self._overflow = True
            except (ValueError, AttributeError) as exc:
                log.warning("console live: unreadable trainer announcement (%s)", type(exc).__name__)
        super().changed(data)

    def resync(self) -> None:
        self._overflow = True  # announcements may be lost: label pages reload their list
        super().resync()

    async def frame(self, view: str) -> Frame:
        """The counts and the changed labels, read once for every open page."""
        ids, self._labels = sorted(self._labels), set()
        overflow, self._overflow = self._overflow, False
        labels = [await self._label(i) for i in ids]
        trail = await self.kb.trail.of(ids) if ids else {}
        return Frame({
            "type": "trainer", "sent_at": time.time(), "reload_labels": overflow,
            "unlabelled": await self.kb.missed.unlabelled(), "proposed": await self.kb.labels.count("proposed"),
            "transcripts": await self.kb.transcripts.count(NEW),
            "labels": [{**label, "trail": [_step(e) for e in trail.get(label["id"], [])]} for label in labels if label],
        })

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
