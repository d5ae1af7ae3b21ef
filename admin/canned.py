"""Canned replies per language, edited by admins and picked by agents."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from admin.users import LANGUAGES
from webui.errors import BadInput, NotFound


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: str
    language: str
    title: str
    text: str


class CannedReplies:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.replies = db["console_canned"]

    async def ensure_indexes(self) -> None:
        await self.replies.create_indexes([IndexModel([("language", ASCENDING), ("title", ASCENDING)])])

    async def all(self, language: str = "") -> list[CannedReply]:
        query = {"language": language} if language else {}
        cursor = self.replies.find(query).sort([("language", ASCENDING), ("title", ASCENDING)])
        return [_reply(d) async for d in cursor]

    async def add(self, language: str, title: str, text: str) -> CannedReply:
        reply = _checked(CannedReply(uuid.uuid4().hex[:12], language, title, text))
        await self.replies.insert_one({"_id": reply.id, "language": reply.language, "title": reply.title, "text": reply.text, "at": time.time()})
        return reply

    async def change(self, reply_id: str, language: str, title: str, text: str) -> tuple[CannedReply, CannedReply]:
        """Edit one reply in place; returns it before and after."""
        after = _checked(CannedReply(reply_id, language, title, text))
        doc = await self.replies.find_one({"_id": reply_id})
        if doc is None:
            raise NotFound("no such canned reply")
        fields = {"language": after.language, "title": after.title, "text": after.text, "at": time.time()}
        if (await self.replies.update_one({"_id": reply_id}, {"$set": fields})).matched_count != 1:
            raise NotFound("no such canned reply")  # deleted meanwhile
        return _reply(doc), after

    async def remove(self, reply_id: str) -> CannedReply:
        doc = await self.replies.find_one({"_id": reply_id})
        if doc is None or (await self.replies.delete_one({"_id": reply_id})).deleted_count != 1:
            raise NotFound("no such canned reply")
        return _reply(doc)


def _reply(doc: dict[str, Any]) -> CannedReply:
    return CannedReply(str(doc["_id"]), doc["language"], doc["title"], doc["text"])


def _checked(reply: CannedReply) -> CannedReply:
    """The reply with its title and text trimmed; BadInput when it may not be stored."""
    if reply.language not in LANGUAGES:
        raise BadInput(f"language must be one of {LANGUAGES}")
    title, text = reply.title.strip(), reply.text.strip()
    if not title or len(title) > 80 or not text or len(text) > 2000:
        raise BadInput("a canned reply needs a title (at most 80 characters) and a text (at most 2000)")
    return CannedReply(reply.id, reply.language, title, text)
