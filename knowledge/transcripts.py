"""Voice transcripts the customer corrected, kept for the trainer: the one owner of
``transcript_corrections``.

``{_id: the voice note's message key, at, conversation, heard, meant, correction,
language, how, status, reviewed_by, reviewed_at}``. The audio stays in the voice archive
under the same message key (:mod:`bot.voice_archive`); this keeps the text pair.
An agent may also correct a transcript in the console (``how``: ``agent``, ``correction``:
``agent:<name>``); that replaces what was kept for the note. ``status`` is ``new``
until a trainer looks: ``accepted`` (the pair is a good example
of what the speech model got wrong) or ``rejected`` (the customer changed the subject
rather than correcting).

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
from knowledge.errors import InvalidEntry
from knowledge.missed import Document

NEW, ACCEPTED, REJECTED = "new", "accepted", "rejected"
VERDICTS = (ACCEPTED, REJECTED)


@dataclass(frozen=True, slots=True)
class KeptCorrection:
    correction: CorrectedTranscript
    at: float
    status: str = NEW
    reviewed_by: str = ""
    reviewed_at: float = 0.0


class CorrectedTranscripts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.kept = db["transcript_corrections"]
        self.writes = GroupCommit(self.kept)

    async def ensure_indexes(self) -> None:
        await self.kept.create_indexes([IndexModel([("status", ASCENDING), ("at", DESCENDING)])])

    async def corrected(self, correction: CorrectedTranscript) -> None:
        c = correction
        await self.writes.write([UpdateOne({"_id": c.message}, {"$setOnInsert": {
            "at": time.time(), "conversation": c.conversation, "heard": c.heard, "meant": c.meant,
            "correction": c.correction, "language": c.language, "how": c.how, "status": NEW,
        }}, upsert=True)])

    async def corrected_by_agent(self, correction: CorrectedTranscript) -> None:
        """An agent's correction: it replaces the customer's (or an earlier agent's), and
        the trainer looks at it afresh."""
        c = correction
        await self.writes.write([UpdateOne({"_id": c.message}, {
            "$set": {"conversation": c.conversation, "heard": c.heard, "meant": c.meant, "correction": c.correction,
                     "language": c.language, "how": c.how, "status": NEW, "reviewed_by": "", "reviewed_at": 0.0},
            "$setOnInsert": {"at": time.time()},
        }, upsert=True)])

    async def recent(self, *, status: str = "", limit: int = 100) -> list[KeptCorrection]:
        query: Document = {"status": status} if status else {}
        return [_kept(d) async for d in self.kept.find(query).sort("at", DESCENDING).limit(limit)]

    async def review(self, message: str, verdict: str, *, by: str) -> KeptCorrection | None:
        """Accept or reject a correction; None when there is none for ``message``."""
        if verdict not in VERDICTS:
            raise InvalidEntry(f"verdict: one of {', '.join(VERDICTS)}")
        doc = await self.kept.find_one_and_update(
            {"_id": message}, {"$set": {"status": verdict, "reviewed_by": by, "reviewed_at": time.time()}},
            return_document=ReturnDocument.AFTER,
        )
        return _kept(doc) if doc is not None else None


def _kept(d: Document) -> KeptCorrection:
    correction = CorrectedTranscript(
        message=str(d["_id"]), conversation=d["conversation"], heard=d["heard"], meant=d["meant"],
        correction=d.get("correction", ""), language=d.get("language", ""), how=d.get("how", ""),
    )
    return KeptCorrection(correction, float(d["at"]), d.get("status", NEW), d.get("reviewed_by", ""), float(d.get("reviewed_at", 0.0)))
