"""Who did what to a trainer label, and when: the one owner of ``trainer_label_trail``.

``{_id, label, at, by, action, before, after}``, one record per change: ``labelled``
(before: the sentences unlabelled, after: what the label says, proposed or approved),
``approved`` and ``reverted`` (before and after: the label's status). Records are only
added, never changed, so the trail stays what happened even after a revert.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from knowledge.missed import Document

LABELLED, APPROVED, REVERTED = "labelled", "approved", "reverted"


@dataclass(frozen=True, slots=True)
class TrailEvent:
    label: str
    by: str
    action: str
    before: str
    after: str
    at: float = 0.0


class LabelTrail:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.events = db["trainer_label_trail"]

    async def ensure_indexes(self) -> None:
        await self.events.create_indexes([IndexModel([("label", ASCENDING), ("at", ASCENDING)]), IndexModel([("at", DESCENDING)])])

    async def add(self, event: TrailEvent) -> TrailEvent:
        at = event.at or time.time()
        await self.events.insert_one({"_id": uuid.uuid4().hex, "label": event.label, "at": at, "by": event.by,
                                      "action": event.action, "before": event.before, "after": event.after})
        return TrailEvent(event.label, event.by, event.action, event.before, event.after, at)

    async def of(self, labels: Sequence[str]) -> dict[str, list[TrailEvent]]:
        """Each label's events, oldest first (one query for a whole page of labels)."""
        out: dict[str, list[TrailEvent]] = {label: [] for label in labels}
        async for d in self.events.find({"label": {"$in": list(labels)}}).sort("at", ASCENDING):
            out[d["label"]].append(TrailEvent(d["label"], d["by"], d["action"], d["before"], d["after"], float(d["at"])))
        return out
