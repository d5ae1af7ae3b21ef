"""A trainer's verdict on a group of missed turns: the one owner of ``trainer_labels``.

``{_id, kind, texts, intent, entities, entry, new_entry, by, at, status, reviewed_by,
reviewed_at, exported_at}``. ``kind`` is

- ``intent``: the sentences mean ``intent`` (``entities`` maps an entity name to the
  value as it is written in the sentences); they become NLU training examples through
  ``kefu kb export-labels``, reviewed before ``kefu nlu train``;
- ``entry``: the sentences ask what knowledge entry ``entry`` answers; they are added to
  its question forms at once, so the bot answers them from the next turn on;
- ``no_answer``: a fair question the base has no answer to; the bot must keep falling
  back (a person answers). ``kefu kb export-labels --set`` writes these, with the
  ``entry`` labels, as a labelled set for ``kefu kb test``;
- ``ignore``: nothing to learn (noise, abuse, another company's product).

``status``: ``proposed`` (from the console: nothing changes until a second person
approves), ``approved`` (in effect: entry labels have added their question forms, intent
labels are exported) or ``reverted``. Labels from the JSON API are approved as they are
made; a stored label without a status is an approved one. Every change of status is in
the review trail (:mod:`knowledge.label_trail`); :mod:`knowledge.review` applies them.

Labelled sentences leave the trainer's groups: :class:`knowledge.missed.MissedTurns`
marks them (a reverted label gives them back).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from knowledge.errors import InvalidEntry

Document = dict[str, Any]
KINDS = ("intent", "entry", "no_answer", "ignore")
PROPOSED, APPROVED, REVERTED = "proposed", "approved", "reverted"
STATUSES = (PROPOSED, APPROVED, REVERTED)
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
    status: str = APPROVED
    reviewed_by: str = ""
    reviewed_at: float = 0.0
    # The entry a label of kind ``entry`` creates when it takes effect (its JSON body).
    new_entry: Mapping[str, Any] | None = None
    # What taking effect changed in the entry: the question forms it added (not those the
    # entry had already) and the entry's version after it. A revert takes back only these,
    # so a form someone had added by hand stays (empty for labels stored before this).
    added: tuple[str, ...] = ()
    applied_version: int = 0

    def to_json(self) -> Document:
        return {"id": self.id, "kind": self.kind, "texts": list(self.texts), "intent": self.intent,
                "entities": dict(self.entities), "entry": self.entry, "by": self.by, "at": self.at,
                "exported_at": self.exported_at, "status": self.status, "reviewed_by": self.reviewed_by,
                "reviewed_at": self.reviewed_at, "new_entry": dict(self.new_entry) if self.new_entry is not None else None,
                "added": list(self.added), "applied_version": self.applied_version}

    def summary(self) -> str:
        """What the label says, in one line (the review trail's before and after)."""
        if self.kind == "intent":
            entities = ", ".join(f"{k}={v}" for k, v in self.entities.items())
            return f"intent {self.intent}" + (f" ({entities})" if entities else "")
        if self.kind == "entry":
            return f"entry {self.entry}" + (" (new)" if self.new_entry is not None else "")
        return self.kind


def label_from_json(data: Mapping[str, Any], *, by: str, status: str = APPROVED) -> TrainerLabel:
    """A label from the API's body (or the console's form, in the same shape);
    :class:`InvalidEntry` naming the bad field."""
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
    new_entry = data.get("new_entry") if kind == "entry" else None
    if new_entry is not None and not isinstance(new_entry, dict):
        raise InvalidEntry("new_entry: an entry object")
    return TrainerLabel(kind=kind, texts=tuple(dict.fromkeys(clean)), intent=intent, entities=entities, entry=entry, by=by,
                        status=status, new_entry=new_entry)


class TrainerLabels:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.labels = db["trainer_labels"]

    async def ensure_indexes(self) -> None:
        await self.labels.create_indexes([IndexModel([("kind", ASCENDING), ("exported_at", ASCENDING)]),
                                          IndexModel([("status", ASCENDING), ("at", DESCENDING)])])

    async def add(self, label: TrainerLabel) -> TrainerLabel:
        doc = {**label.to_json(), "_id": uuid.uuid4().hex, "at": time.time()}
        doc.pop("id")
        await self.labels.insert_one(doc)
        return _label(doc)

    async def listing(self, *, kind: str = "", status: str = "", limit: int = 100, newest_first: bool = False) -> list[TrainerLabel]:
        query: Document = {"kind": kind} if kind else {}
        if status:
            query.update(_status_is(status))
        order = DESCENDING if newest_first else ASCENDING
        return [_label(d) async for d in self.labels.find(query).sort("at", order).limit(limit)]

    async def get(self, label_id: str) -> TrainerLabel | None:
        doc = await self.labels.find_one({"_id": label_id})
        return _label(doc) if doc is not None else None

    async def intents(self) -> list[TrainerLabel]:
        """Every approved intent label, oldest first: the export writes them all, so the
        reviewed file is whole each time."""
        return await self.approved("intent")

    async def approved(self, *kinds: str) -> list[TrainerLabel]:
        query = {"kind": {"$in": list(kinds)}, **_status_is(APPROVED)}
        return [_label(d) async for d in self.labels.find(query).sort("at", ASCENDING)]

    async def count(self, status: str) -> int:
        return int(await self.labels.count_documents(_status_is(status)))

    async def change_status(self, label_id: str, *, was: str, now: str, by: str) -> TrainerLabel | None:
        """Move a label from ``was`` to ``now``; None when it is no longer at ``was`` (a
        second reviewer got there first), so one review wins."""
        doc = await self.labels.find_one_and_update(
            {"_id": label_id, **_status_is(was)}, {"$set": {"status": now, "reviewed_by": by, "reviewed_at": time.time()}},
            return_document=ReturnDocument.AFTER,
        )
        return _label(doc) if doc is not None else None

    async def set_applied(self, label_id: str, *, added: tuple[str, ...], version: int) -> None:
        """Record what the label's approval changed in its entry (see :attr:`TrainerLabel.added`)."""
        await self.labels.update_one({"_id": label_id}, {"$set": {"added": list(added), "applied_version": version}})

    async def mark_exported(self, ids: list[str]) -> None:
        await self.labels.update_many({"_id": {"$in": ids}, "exported_at": 0.0}, {"$set": {"exported_at": time.time()}})


def _status_is(status: str) -> Document:
    # Labels stored before reviews existed have no status: they took effect when made.
    if status == APPROVED:
        return {"status": {"$in": [APPROVED, None]}}
    return {"status": status}


def _label(doc: Document) -> TrainerLabel:
    return TrainerLabel(
        kind=doc["kind"], texts=tuple(doc["texts"]), intent=doc.get("intent", ""), entities=dict(doc.get("entities") or {}),
        entry=doc.get("entry", ""), by=doc.get("by", ""), id=str(doc["_id"]), at=float(doc.get("at", 0.0)),
        exported_at=float(doc.get("exported_at", 0.0)), status=doc.get("status") or APPROVED,
        reviewed_by=doc.get("reviewed_by", ""), reviewed_at=float(doc.get("reviewed_at", 0.0)), new_entry=doc.get("new_entry"),
        added=tuple(doc.get("added") or ()), applied_version=int(doc.get("applied_version") or 0),
    )
