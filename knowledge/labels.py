"""A trainer's verdict on a group of missed turns: the one owner of ``trainer_labels``.

``{_id, kind, texts, intent, entities, entry, by, at, exported_at}``. ``kind`` is

- ``intent``: the sentences mean ``intent`` (``entities`` maps an entity name to the
  value as it is written in the sentences); they become NLU training examples through
  ``kefu kb export-labels``, reviewed before ``kefu nlu train``;
- ``entry``: the sentences ask what knowledge entry ``entry`` answers; they are added to
  its question forms at once, so the bot answers them from the next turn on;
- ``ignore``: nothing to learn (noise, abuse, another company's product).

Labelled sentences leave the trainer's groups: :class:`knowledge.missed.MissedTurns`
marks them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from knowledge.errors import InvalidEntry

Document = dict[str, Any]
KINDS = ("intent", "entry", "ignore")
MAX_TEXTS = 200
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class TrainerLabel:
    kind: str
    texts: tuple[str, ...]
    intent: str = ""
    entities: Mapping[str, str] = field(default_factory=dict)
    entry: str = ""
    by: str = ""
    id: str = ""
    at: float = 0.0
    exported_at: float = 0.0

    def to_json(self) -> Document:
        return {"id": self.id, "kind": self.kind, "texts": list(self.texts), "intent": self.intent,
                "entities": dict(self.entities), "entry": self.entry, "by": self.by, "at": self.at,
                "exported_at": self.exported_at}


def label_from_json(data: Mapping[str, Any], *, by: str) -> TrainerLabel:
    """A label from the API's body; :class:`InvalidEntry` naming the bad field."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise InvalidEntry(f"kind: one of {', '.join(KINDS)}")
    texts = data.get("texts")
    if not isinstance(texts, list) or not texts or len(texts) > MAX_TEXTS:
        raise InvalidEntry(f"texts: a list of 1-{MAX_TEXTS} sentences (the group's)")
    clean: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip() or len(text) > 1000 or "\n" in text:
            raise InvalidEntry("texts: each a sentence of 1-1000 characters on one line")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEntry("texts: not valid text") from None
        clean.append(text.strip())
    intent = entry = ""
    entities: dict[str, str] = {}
    if kind == "intent":
        intent = data.get("intent") or ""
        if not isinstance(intent, str) or not _NAME.match(intent):
            raise InvalidEntry("intent: an intent name (lower case, digits, _)")
        raw = data.get("entities") or {}
        if not isinstance(raw, dict):
            raise InvalidEntry("entities: an object of entity name -> value as written")
        for name, value in raw.items():
            if not _NAME.match(name) or not isinstance(value, str) or not value.strip() or len(value) > 100:
                raise InvalidEntry(f"entities.{name}: a value of 1-100 characters as written in the sentences")
            if not any(value in t for t in clean):
                raise InvalidEntry(f"entities.{name}: {value!r} appears in none of the sentences")
            entities[name] = value
    elif kind == "entry":
        entry = data.get("entry") or ""
        if not isinstance(entry, str) or not entry.strip():
            raise InvalidEntry("entry: the knowledge entry's id")
    return TrainerLabel(kind=kind, texts=tuple(dict.fromkeys(clean)), intent=intent, entities=entities, entry=entry, by=by)


class TrainerLabels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.labels = db["trainer_labels"]

    async def ensure_indexes(self) -> None:
        await self.labels.create_indexes([IndexModel([("kind", ASCENDING), ("exported_at", ASCENDING)])])

    async def add(self, label: TrainerLabel) -> TrainerLabel:
        doc = {**label.to_json(), "_id": uuid.uuid4().hex, "at": time.time()}
        doc.pop("id")
        await self.labels.insert_one(doc)
        return _label(doc)

    async def listing(self, *, kind: str = "", limit: int = 100) -> list[TrainerLabel]:
        query: Document = {"kind": kind} if kind else {}
        return [_label(d) async for d in self.labels.find(query).sort("at", ASCENDING).limit(limit)]

    async def intents(self) -> list[TrainerLabel]:
        """Every intent label, oldest first: the export writes them all, so the reviewed
        file is whole each time."""
        return [_label(d) async for d in self.labels.find({"kind": "intent"}).sort("at", ASCENDING)]

    async def mark_exported(self, ids: list[str]) -> None:
        await self.labels.update_many({"_id": {"$in": ids}, "exported_at": 0.0}, {"$set": {"exported_at": time.time()}})


def _label(doc: Document) -> TrainerLabel:
    return TrainerLabel(
        kind=doc["kind"], texts=tuple(doc["texts"]), intent=doc.get("intent", ""), entities=dict(doc.get("entities") or {}),
        entry=doc.get("entry", ""), by=doc.get("by", ""), id=str(doc["_id"]), at=float(doc.get("at", 0.0)),
        exported_at=float(doc.get("exported_at", 0.0)),
    )
