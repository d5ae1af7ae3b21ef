"""Every change a customer (or their colleague) makes in the portal, kept for them and us.

:class:`PortalAudit` owns ``portal_audit``. Entries are written after the change
succeeded and never edited; the customer's data export carries them.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from portal.members import Viewer


class PortalAudit:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db["portal_audit"]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes([IndexModel([("customer", ASCENDING), ("at", DESCENDING)])])

    async def record(self, viewer: Viewer, action: str, target: str = "", *, before: Any = None, after: Any = None) -> None:
        await self._collection.insert_one({
            "customer": viewer.customer, "at": time.time(), "actor": viewer.actor, "member": viewer.member,
            "action": action, "target": target, "before": before, "after": after,
        })

    async def recent(self, customer: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self._collection.find({"customer": customer}, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [d async for d in cursor]
