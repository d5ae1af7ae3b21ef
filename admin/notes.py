"""Internal notes on a conversation: written by agents for agents, never sent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from webui.errors import BadInput

MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class Note:
    conversation: str
    author: str
    text: str
    at: float


class Notes:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.notes = db["console_notes"]

    async def ensure_indexes(self) -> None:
        await self.notes.create_indexes([IndexModel([("conversation", ASCENDING), ("at", ASCENDING)])])

    async def add(self, conversation: str, author: str, text: str) -> Note:
        text = text.strip()
        if not text or len(text) > MAX_NOTE:
            raise BadInput(f"a note needs 1-{MAX_NOTE} characters")
        note = Note(conversation, author, text, time.time())
        await self.notes.insert_one({"conversation": conversation, "author": author, "text": text, "at": note.at})
        return note

    async def of(self, conversation: str) -> list[Note]:
        cursor = self.notes.find({"conversation": conversation}, {"_id": 0}).sort("at", ASCENDING)
        return [Note(**doc) async for doc in cursor]
