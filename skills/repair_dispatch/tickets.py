"""Repair tickets: the one owner of the ``tickets`` collection."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase


class Tickets:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(
            [IndexModel([("customer", 1), ("created_at", DESCENDING)]), IndexModel([("status", 1), ("created_at", DESCENDING)])]
        )

    async def open(self, *, customer: str, conversation: str, source_message: str, fields: Mapping[str, str]) -> dict[str, Any]:
        now = time.time()
        number = time.strftime("R%Y%m%d-", time.localtime(now)) + secrets.token_hex(3).upper()
        doc: dict[str, Any] = {
            "_id": source_message,  # one ticket per report, also when the message is handled again
            "number": number,
            "customer": customer,
            "conversation": conversation,
            "status": "new",
            "created_at": now,
            **dict(fields),
            "timeline": [{"at": now, "step": "opened", "by": "bot", "detail": dict(fields)}],
        }
        await self.collection.update_one({"_id": source_message}, {"$setOnInsert": doc}, upsert=True)
        stored = await self.collection.find_one({"_id": source_message})
        assert stored is not None
        return stored

    async def latest(self, customer: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"customer": customer}, sort=[("created_at", DESCENDING)])
