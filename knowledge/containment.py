"""How much the bot handles on its own, per day: the trainer's scoreboard.

For each day (in the company's time zone):

- ``conversations``: conversations in which the customer wrote that day;
- ``resolved_without_human``: the share of them that were not put in the human queue
  that day;
- ``knowledge_answer_rate``: of the turns no skill owns (out of scope, not understood),
  the share the knowledge base answered;
- ``handoff_rate``: hand-offs per conversation, by reason.

:class:`KnowledgeAnswers` owns ``kb_answers`` (one document per knowledge answer); the
other counts come from their owners (messages, hand-offs, missed turns).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
#: Reasons a missed turn counts as a question no skill owned and the knowledge base did not answer.
UNANSWERED = ("out_of_scope", "fallback")


class KnowledgeAnswers:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.answers = db["kb_answers"]

    async def ensure_indexes(self) -> None:
        await self.answers.create_indexes([IndexModel([("at", ASCENDING)])])

    async def add(self, *, entry: str, conversation: str, at: float | None = None) -> None:
        await self.answers.insert_one({"entry": entry, "conversation": conversation, "at": time.time() if at is None else at})

    async def count_between(self, start: float, end: float) -> int:
        return int(await self.answers.count_documents({"at": {"$gte": start, "$lt": end}}))


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: dt.date
    conversations: int
    handed_off: int
    knowledge_answers: int
    unanswered: int
    handoffs_by_reason: dict[str, int]

    @property
    def resolved_without_human(self) -> float:
        return 1.0 - self.handed_off / self.conversations if self.conversations else 0.0

    @property
    def knowledge_answer_rate(self) -> float:
        asked = self.knowledge_answers + self.unanswered
        return self.knowledge_answers / asked if asked else 0.0

    def to_json(self) -> Document:
        n = self.conversations
        return {
            "day": self.day.isoformat(), "conversations": n, "handed_off": self.handed_off,
            "resolved_without_human": round(self.resolved_without_human, 4),
            "knowledge_answers": self.knowledge_answers, "unanswered": self.unanswered,
            "knowledge_answer_rate": round(self.knowledge_answer_rate, 4),
            "handoffs_by_reason": self.handoffs_by_reason,
            "handoff_rate": {r: round(c / n, 4) if n else 0.0 for r, c in self.handoffs_by_reason.items()},
        }


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the counts come from, each through its collection's owner."""

    active_conversations: Callable[[float, float], Awaitable[set[str]]]
    handoffs: Callable[[float, float], Awaitable[list[tuple[str, str]]]]
    knowledge_answers: Callable[[float, float], Awaitable[int]]
    unanswered: Callable[[float, float], Awaitable[int]]


async def per_day(sources: Sources, *, last: dt.date, days: int, tz: dt.tzinfo) -> list[DayFigures]:
    """Figures for ``days`` days ending with ``last``, oldest first."""
    out = []
    for back in range(days - 1, -1, -1):
        day = last - dt.timedelta(days=back)
        start = dt.datetime.combine(day, dt.time(), tz).timestamp()
        end = start + 86400
        active = await sources.active_conversations(start, end)
        queued = await sources.handoffs(start, end)
        reasons = Counter(reason or "unspecified" for _, reason in dict(queued).items())
        out.append(DayFigures(
            day=day, conversations=len(active | {c for c, _ in queued}), handed_off=len({c for c, _ in queued}),
            knowledge_answers=await sources.knowledge_answers(start, end), unanswered=await sources.unanswered(start, end),
            handoffs_by_reason=dict(reasons.most_common()),
        ))
    return out


CONTAINMENT = web.AppKey("containment", Sources)
