"""Turns the bot did not handle well, kept for the trainer: the one owner of ``missed_turns``.

``{_id, at, reason, text, language, conversation, intent, confidence, entry, best,
score}``: ``reason`` is why it counts as missed: ``out_of_scope`` or ``fallback`` with no
knowledge answer, ``knowledge_rejected`` when the customer said the answer was not it
(``entry`` names the entry, ``text`` the question it answered, ``rejection`` what the
customer said), ``low_confidence`` when a skill acted on an intent NLU was unsure of,
``handoff:<reason>`` when the turn put the conversation in the human queue. The
trainer's loop groups and labels these; a labelled turn carries its label's id in
``label`` and leaves the groups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from knowledge.news import MISSED, TrainerNews

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MissedTurn:
    reason: str
    text: str
    language: str
    conversation: str
    intent: str = ""
    confidence: float = 0.0
    entry: str = ""  # the knowledge entry the bot answered with (rejections)
    best: str = ""  # the best entry that did not clear the threshold
    score: float = 0.0
    rejection: str = ""


class MissedTurns:
    def __init__(self, db: AsyncDatabase[Document], news: TrainerNews | None = None) -> None:
        self.turns = db["missed_turns"]
        self.news = news  # open trainer pages hear of each new turn

    async def ensure_indexes(self) -> None:
        await self.turns.create_indexes(
            [IndexModel([("reason", ASCENDING), ("at", DESCENDING)]), IndexModel([("at", DESCENDING)]),
             IndexModel([("text", ASCENDING)]), IndexModel([("label", ASCENDING)], sparse=True)]
        )

    async def add(self, turn: MissedTurn) -> None:
        await self.turns.insert_one({"at": time.time(), **_fields(turn)})
        if self.news is not None:
            await self.news.announce(MISSED)

    async def recent(self, *, reason: str = "", limit: int = 100, unlabelled: bool = False) -> list[MissedTurn]:
        query: Document = {"reason": reason} if reason else {}
        if unlabelled:
            query["label"] = {"$exists": False}
        cursor = self.turns.find(query, {"_id": 0, "at": 0}).sort("at", DESCENDING).limit(limit)
        return [MissedTurn(**{k: v for k, v in d.items() if k in MissedTurn.__dataclass_fields__}) async for d in cursor]

    async def unlabelled(self) -> int:
        return int(await self.turns.count_documents({"label": {"$exists": False}}))

    async def count_between(self, start: float, end: float, reasons: tuple[str, ...]) -> int:
        return int(await self.turns.count_documents({"reason": {"$in": list(reasons)}, "at": {"$gte": start, "$lt": end}}))

    async def mark_labelled(self, texts: list[str], label: str) -> int:
        """Mark the unlabelled turns with these texts; how many were marked."""
        result = await self.turns.update_many({"text": {"$in": texts}, "label": {"$exists": False}}, {"$set": {"label": label}})
        return int(result.modified_count)

    async def unmark(self, label: str) -> int:
        """A reverted label's turns go back to the groups."""
        result = await self.turns.update_many({"label": label}, {"$unset": {"label": ""}})
        return int(result.modified_count)


def _fields(turn: MissedTurn) -> Document:
    return {name: getattr(turn, name) for name in MissedTurn.__dataclass_fields__}
