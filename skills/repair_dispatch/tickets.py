"""Repair tickets: :class:`Tickets` is the one owner of the ``tickets`` collection.

The chat form opens tickets, the dispatch records its steps, the API lists them and
changes their status: all through the methods here, none through the collection.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import update_and_get


class TimelineEntry(TypedDict, total=False):
    at: float
    step: str
    by: str
    ok: bool
    detail: Any


class Ticket(TypedDict, total=False):
    """A repair ticket as stored; every step the bot or a person took is on its timeline."""

    _id: str  # the reporting message's key: one ticket per report
    number: str  # what the customer and the engineer see, e.g. R20261207-3F2A1C
    customer: str  # the chat identity that reported it
    conversation: str
    status: str  # new, assigned, on_the_way, done
    status_at: float
    created_at: float
    device_model: str
    fault: str
    address: str
    preferred_time: str
    timeline: list[TimelineEntry]
    # Filled by the dispatch:
    pref_customer: str
    category: str
    crm_customer: str | None
    device: dict[str, Any] | None
    warranty: dict[str, Any]
    location: list[float] | None
    region: str
    parts: list[dict[str, Any]]
    engineer: dict[str, Any]
    alternates: list[dict[str, Any]]
    eta: str
    eta_min: int
    incident: dict[str, str]
    todo_id: str
    dispatch: dict[str, Any]  # state (done, retrying, failed), pending steps, attempts, next_at
    attention: dict[str, Any]  # why an agent should look at it
    qr_path: str
    diagnosis: dict[str, Any]  # likely causes and parts from past cases
    self_check: dict[str, Any]  # {cause, offered}: the customer was asked to check first


class Tickets:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db["tickets"]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(
            [
                IndexModel([("customer", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("number", ASCENDING)]),
                IndexModel([("dispatch.state", ASCENDING), ("dispatch.next_at", ASCENDING)]),
                IndexModel([("attention.at", ASCENDING)], sparse=True),
            ]
        )

    async def open(self, *, customer: str, conversation: str, source_message: str, fields: Mapping[str, str]) -> Ticket:
        """The ticket of a report, opened if it is new (a report handled again finds its own)."""
        now = time.time()
        number = time.strftime("R%Y%m%d-", time.localtime(now)) + secrets.token_hex(3).upper()
        doc: dict[str, Any] = {
            "_id": source_message,
            "number": number,
            "customer": customer,
            "conversation": conversation,
            "status": "new",
            "created_at": now,
            **dict(fields),
            "timeline": [{"at": now, "step": "opened", "by": "bot", "detail": dict(fields)}],
        }
        await self._collection.update_one({"_id": source_message}, {"$setOnInsert": doc}, upsert=True)
        stored = await self.get(source_message)
        assert stored is not None
        return stored

    async def get(self, ticket_id: str) -> Ticket | None:
        return cast(Ticket | None, await self._collection.find_one({"_id": ticket_id}))

    async def find(self, ref: str) -> Ticket | None:
        """A ticket by its id or its number."""
        return cast(Ticket | None, await self._collection.find_one({"$or": [{"_id": ref}, {"number": ref}]}))

    async def latest(self, customer: str) -> Ticket | None:
        return cast(Ticket | None, await self._collection.find_one({"customer": customer}, sort=[("created_at", DESCENDING)]))

    async def listing(self, *, attention: bool = False, status: str = "", limit: int = 50) -> list[Ticket]:
        """Newest first; ``attention`` keeps those an agent should look at."""
        query: dict[str, Any] = {}
        if attention:
            query["attention.at"] = {"$gt": 0}
        if status:
            query["status"] = status
        return [cast(Ticket, d) async for d in self._collection.find(query).sort("created_at", DESCENDING).limit(limit)]

    async def due_retries(self, now: float, limit: int) -> list[Ticket]:
        query = {"dispatch.state": "retrying", "dispatch.next_at": {"$lte": now}}
        return [cast(Ticket, d) async for d in self._collection.find(query).limit(limit)]

    async def record(self, ticket_id: str, fields: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]]) -> None:
        """Set ``fields`` and append ``timeline`` in one write."""
        update: dict[str, Any] = {"$push": {"timeline": {"$each": list(timeline)}}}
        if fields:
            update["$set"] = dict(fields)
        await self._collection.update_one({"_id": ticket_id}, update)

    async def change_status(self, ticket_id: str, status: str, *, at: float, by: str) -> Ticket | None:
        """The ticket after moving it to ``status``; ``None`` if it had that status already."""
        entry = {"at": at, "step": "status", "by": by, "ok": True, "detail": {"status": status}}
        found = await update_and_get(
            self._collection, {"_id": ticket_id, "status": {"$ne": status}},
            {"$set": {"status": status, "status_at": at}, "$push": {"timeline": entry}},
        )
        return cast(Ticket | None, found)
