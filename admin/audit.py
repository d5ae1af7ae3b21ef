"""The audit log: every change made through the console, who made it and what changed.

:class:`AuditLog` owns the ``console_audit`` collection. Entries are written after the
change succeeded and are never edited; only admins read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str  # e.g. user.create, conversation.claim, apikey.revoke
    target: str
    before: Any
    after: Any


class AuditLog:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.entries = db["console_audit"]

    async def ensure_indexes(self) -> None:
        await self.entries.create_indexes([IndexModel([("at", DESCENDING)]), IndexModel([("target", 1), ("at", DESCENDING)])])

    async def record(self, actor: str, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        await self.entries.insert_one(
            {"at": time.time(), "actor": actor, "action": action, "target": target, "before": before, "after": after}
        )

    async def recent(self, limit: int = 200, *, target: str = "") -> list[AuditEntry]:
        query = {"target": target} if target else {}
        cursor = self.entries.find(query, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [AuditEntry(**doc) async for doc in cursor]
