"""Voice transcripts the customer corrected, kept for the trainer: the one owner of
``transcript_corrections``.

``{_id: the voice note's message key, at, conversation, heard, meant, correction,
language, how, status, reviewed_by, reviewed_at, exported_at, trail}``. The audio stays in the voice archive
under the same message key (:mod:`bot.voice_archive`); this keeps the text pair.
An agent may also correct a transcript in the console (``how``: ``agent``, ``correction``:
``agent:<name>``); that replaces what was kept for the note. ``status`` is ``new``
until a trainer looks: ``accepted`` (the pair is a good example
of what the speech model got wrong) or ``rejected`` (the customer changed the subject
rather than correcting). An agent's correction is reviewed by another person, as a
trainer label is: the customer's by any trainer. ``trail`` keeps every correction and
verdict (who, when, status before and after); records are only added to it. Accepted
corrections go out in the reviewed export as the speech vocabulary
(:mod:`knowledge.vocabulary`); ``exported_at`` says when one first did.

Writes ride a group commit (:class:`bot.group_commit.GroupCommit`): corrections from many
conversations at once go out as one command, and one that cannot be stored (text BSON
cannot encode) fails alone. Each is an upsert keyed by the voice note, so a turn that is
handled again writes no second record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from bot.group_commit import GroupCommit
from bot.voice import CorrectedTranscript
from knowledge.errors import InvalidEntry, ReviewRefused
from knowledge.missed import Document
from knowledge.news import TRANSCRIPT, TrainerNews

NEW, ACCEPTED, REJECTED = "new", "accepted", "rejected"
VERDICTS = (ACCEPTED, REJECTED)
CORRECTED = "corrected"  # the trail's action for an agent's correction
AGENT = "agent:"  # ``correction`` of an agent's: ``agent:<name>``


@dataclass(frozen=True, slots=True)
class Step:
    """One record of a correction's trail."""

    at: float
    by: str
    action: str  # corrected, accepted, rejected
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class KeptCorrection:
    correction: CorrectedTranscript
    at: float
    status: str = NEW
    reviewed_by: str = ""
    reviewed_at: float = 0.0
    exported_at: float = 0.0
    trail: tuple[Step, ...] = ()

    @property
    def corrected_by(self) -> str:
        """The agent who made this correction; empty for a customer's own."""
        c = self.correction.correction
        return c.removeprefix(AGENT) if c.startswith(AGENT) else ""


class CorrectedTranscripts:
    def __init__(self, db: AsyncDatabase[Document], news: TrainerNews | None = None) -> None:
        self.kept = db["transcript_corrections"]
        self.writes = GroupCommit(self.kept)
        self.news = news  # open trainer pages hear of each correction and verdict

    async def ensure_indexes(self) -> None:
        await self.kept.create_indexes([IndexModel([("status", ASCENDING), ("at", DESCENDING)])])

    async def corrected(self, correction: CorrectedTranscript) -> None:
        c = correction
        await self.writes.write([UpdateOne({"_id": c.message}, {"$setOnInsert": {
            "at": time.time(), "conversation": c.conversation, "heard": c.heard, "meant": c.meant,
            "correction": c.correction, "language": c.language, "how": c.how, "status": NEW,
        }}, upsert=True)])
        await self._announce(c.message)

    async def corrected_by_agent(self, correction: CorrectedTranscript) -> None:
        """An agent's correction: it replaces the customer's (or an earlier agent's), and
        the trainer looks at it afresh."""
        c = correction
        step = {"at": time.time(), "by": c.correction.removeprefix(AGENT), "action": CORRECTED, "before": c.heard, "after": c.meant}
        await self.writes.write([UpdateOne({"_id": c.message}, {
            "$set": {"conversation": c.conversation, "heard": c.heard, "meant": c.meant, "correction": c.correction,
                     "language": c.language, "how": c.how, "status": NEW, "reviewed_by": "", "reviewed_at": 0.0,
                     "exported_at": 0.0},
            "$setOnInsert": {"at": time.time()},
            "$push": {"trail": step},
        }, upsert=True)])
        await self._announce(c.message)

    async def recent(self, *, status: str = "", limit: int = 100) -> list[KeptCorrection]:
        query: Document = {"status": status} if status else {}
        return [_kept(d) async for d in self.kept.find(query).sort("at", DESCENDING).limit(limit)]

    async def review(self, message: str, verdict: str, *, by: str) -> KeptCorrection | None:
        """Accept or reject a correction; None when there is none for ``message``.

        Raises:
            ReviewRefused: it is ``by``'s own correction, it has this verdict already, or
                someone changed it meanwhile.
        """
        if verdict not in VERDICTS:
            raise InvalidEntry(f"verdict: one of {', '.join(VERDICTS)}")
        found = await self.kept.find_one({"_id": message})
        if found is None:
            return None
        current = _kept(found)
        if current.corrected_by == by:
            raise ReviewRefused("a second person reviews a correction: this one is yours")
        if current.status == verdict:
            raise ReviewRefused(f"the correction is {verdict} already")
        now = time.time()
        step = {"at": now, "by": by, "action": verdict, "before": current.status, "after": verdict}
        # Only from the state this reviewer saw: of two verdicts at once, one wins.
        doc = await self.kept.find_one_and_update(
            {"_id": message, "status": current.status, "meant": current.correction.meant},
            {"$set": {"status": verdict, "reviewed_by": by, "reviewed_at": now}, "$push": {"trail": step}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise ReviewRefused("someone changed the correction meanwhile")
        await self._announce(message)
        return _kept(doc)

    async def count(self, status: str) -> int:
        return int(await self.kept.count_documents({"status": status}))

    async def _announce(self, message: str) -> None:
        if self.news is not None:
            await self.news.announce(TRANSCRIPT, message)

    async def accepted(self) -> list[KeptCorrection]:
        """Every accepted correction, oldest first: the export is written whole from them."""
        return [_kept(d) async for d in self.kept.find({"status": ACCEPTED}).sort("at", ASCENDING)]

    async def mark_exported(self, messages: list[str]) -> None:
        await self.kept.update_many({"_id": {"$in": messages}, "exported_at": {"$in": [0.0, None]}},
                                    {"$set": {"exported_at": time.time()}})


def _kept(d: Document) -> KeptCorrection:
    correction = CorrectedTranscript(
        message=str(d["_id"]), conversation=d["conversation"], heard=d["heard"], meant=d["meant"],
        correction=d.get("correction", ""), language=d.get("language", ""), how=d.get("how", ""),
    )
    trail = tuple(Step(float(t["at"]), t["by"], t["action"], t["before"], t["after"]) for t in d.get("trail") or ())
    return KeptCorrection(correction, float(d["at"]), d.get("status", NEW), d.get("reviewed_by", ""), float(d.get("reviewed_at", 0.0)),
                          float(d.get("exported_at") or 0.0), trail)
