"""Renewal opportunities and the sales owner's to-do: the only owner of the
``renewal_opportunities`` collection."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from bot.mongo import Document
from preferences.clock import Clock
from skills.connectors.base import ConnectorError
from skills.connectors.registry import Connectors
from skills.connectors.todo import TodoConnector
from skills.renewal.contracts import ContractBook

log = logging.getLogger(__name__)


class Deals:
    def __init__(self, db: AsyncDatabase[Document], book: ContractBook, connectors: Connectors, clock: Clock) -> None:
        self.opportunities = db["renewal_opportunities"]
        self.book = book
        self.connectors = connectors
        self.clock = clock

    async def ensure_indexes(self) -> None:
        await self.opportunities.create_indexes(
            [IndexModel([("owner", ASCENDING), ("created_at", ASCENDING)]), IndexModel([("conversation", ASCENDING)])]
        )

    async def open_opportunity(self, contract: Document, *, via: str, conversation: str) -> tuple[Document, bool]:
        """One opportunity per contract term (idempotent), with a to-do for the sales owner."""
        oid = f"{contract['_id']}:{int(float(contract.get('end', 0)))}"
        q = self.book.quote(contract)
        doc = {"_id": oid, "contract": contract["_id"], "customer": contract.get("customer"), "owner": (contract.get("sales_owner") or {}).get("name", ""),
               "quote": q, "status": "open", "via": via, "conversation": conversation, "created_at": self.clock.now()}
        try:
            await self.opportunities.insert_one(doc)
            created = True
        except DuplicateKeyError:
            created = False
        if created:
            task = await self.sales_todo(contract, "opportunity")
            await self.opportunities.update_one({"_id": oid}, {"$set": {"todo": task, "todo_failed": task is None}})
        stored = await self.opportunities.find_one({"_id": oid})
        assert stored is not None
        return stored, created

    async def sales_todo(self, contract: Mapping[str, Any], why: str) -> str | None:
        found = self.connectors.items.get("dingtalk_todo")
        todo = found if isinstance(found, TodoConnector) else None
        owner = contract.get("sales_owner") or {}
        if todo is None or not owner.get("union_id"):
            return None
        q = self.book.quote(contract)
        try:
            return await todo.create_task(
                executors=[str(owner["union_id"])], subject=f"续约 {contract['_id']} {contract.get('product', '')}",
                description=f"{why}: {q['currency']} {q['amount']:,.0f} / {q['months']} 个月", source_id=f"renewal:{contract['_id']}:{why}",
                due_ts=float(contract.get("end", 0)) or None,
            )
        except ConnectorError as exc:
            log.warning("renewal to-do for %s failed: %s", contract["_id"], exc)
            return None

    async def of_conversation(self, conversation: str, limit: int = 20) -> list[Document]:
        """The opportunities a conversation opened (with their quotes), oldest first."""
        return [o async for o in self.opportunities.find({"conversation": conversation}).sort("created_at", ASCENDING).limit(limit)]

    async def requests_of(self, owners: Sequence[str], limit: int = 200) -> list[Document]:
        """The renewal requests of these CRM customers, newest first."""
        return [o async for o in self.opportunities.find({"customer": {"$in": list(owners)}}).sort("created_at", -1).limit(limit)]
