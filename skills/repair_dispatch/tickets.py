"""Repair tickets: :class:`Tickets` is the one owner of the ``tickets`` collection.

The chat form opens tickets, the dispatch records its steps, the API lists them and
changes their status: all through the methods here, none through the collection. Each
write is announced on :data:`CHANGED` (gathered: a batch of writes publishes once), so
the console's repair board follows them in every web process.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.announce import Announcer
from bot.mongo import newest_first, update_and_get
from skills.repair_dispatch.catalog import fault_category


OPEN_STATUSES = ("new", "assigned", "on_the_way")
#: Redis channel a change of any ticket is announced on (no payload: read the board again).
CHANGED = "kefu:tickets:changed"


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
    visit: dict[str, Any]  # a booked window: slot (day:part), start, end, day, part, hours
    rating: dict[str, Any]  # the customer's stars and comment after the visit
    diagnosis: dict[str, Any]  # likely causes and parts from past cases
    self_check: dict[str, Any]  # {cause, offered}: the customer was asked to check first


class Tickets:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, announcer: Announcer | None = None) -> None:
        self._collection = db["tickets"]
        self.announcer = announcer

    def _changed(self) -> None:
        if self.announcer is not None:
            self.announcer.changed()

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes(
            [
                IndexModel([("customer", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("number", ASCENDING)]),
                IndexModel([("dispatch.state", ASCENDING), ("dispatch.next_at", ASCENDING)]),
                IndexModel([("attention.at", ASCENDING)], sparse=True),
                IndexModel([("visit.slot", ASCENDING)], sparse=True),
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
        self._changed()
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

    async def open_for(self, customer: str, device_model: str, category: str, *, besides: str) -> Ticket | None:
        """The customer's unfinished ticket for this device and kind of fault (not ``besides``)."""
        cursor = self._collection.find(
            {"customer": customer, "device_model": device_model, "status": {"$ne": "done"}, "_id": {"$ne": besides}},
            sort=[("created_at", DESCENDING)],
        ).limit(20)
        async for ticket in cursor:
            if fault_category(str(ticket.get("fault", ""))) == category:
                return cast(Ticket, ticket)
        return None

    async def add_note(self, ticket_id: str, text: str, *, by: str) -> None:
        """What the customer added to an open ticket, on its timeline."""
        await self.record(ticket_id, {}, [{"at": time.time(), "step": "note", "by": by, "detail": {"text": text}}])

    async def booked(self, slot: str) -> dict[str, int]:
        """Engineer id -> unfinished visits already booked in a window (``visit.slot``)."""
        counts: dict[str, int] = {}
        async for t in self._collection.find({"visit.slot": slot, "status": {"$ne": "done"}}, projection={"engineer.id": 1}):
            engineer = str((t.get("engineer") or {}).get("id", ""))
            counts[engineer] = counts.get(engineer, 0) + 1
        return counts

    async def of_customer(self, identities: Sequence[str], *, before: float | None = None, limit: int = 20) -> list[Ticket]:
        """A customer's tickets (any of their chat identities), newest first, opened before
        ``before`` when given, timelines left out.

        One equality query per identity, merged: the embedded server's planner scans the
        whole collection for ``$in`` combined with a range, but uses the index for each."""
        now = time.time()
        each = await asyncio.gather(*(
            newest_first(self._collection, {"customer": identity}, field="created_at", now=now, limit=limit,
                         projection={"timeline": 0, "alternates": 0}, before=before)
            for identity in identities
        ))
        merged = sorted((d for found in each for d in found), key=lambda d: float(d.get("created_at", 0)), reverse=True)
        return [cast(Ticket, d) for d in merged[:limit]]

    async def of_conversation(self, customer: str, conversation: str, limit: int = 20) -> list[Ticket]:
        """The tickets opened in one conversation, with their timelines, oldest first
        (read through the customer's index: a customer has few tickets)."""
        cursor = self._collection.find({"customer": customer, "conversation": conversation}, projection={"alternates": 0})
        found = [cast(Ticket, d) async for d in cursor.sort("created_at", DESCENDING).limit(limit)]
        return found[::-1]

    async def of_customer_one(self, identities: Sequence[str], ticket_id: str) -> Ticket | None:
        """One of the customer's tickets; None for an id that is not theirs."""
        return cast(Ticket | None, await self._collection.find_one({"_id": ticket_id, "customer": {"$in": list(identities)}}))

    async def rate(self, ticket_id: str, stars: int, comment: str, *, by: str, at: float) -> None:
        """The customer's rating of the visit, on the ticket and its timeline."""
        rating = {"stars": stars, "comment": comment, "at": at, "by": by}
        entry = {"at": at, "step": "rated", "by": "customer", "ok": True, "detail": {"stars": stars}}
        await self._collection.update_one({"_id": ticket_id}, {"$set": {"rating": rating}, "$push": {"timeline": entry}})
        self._changed()

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
        self._changed()

    async def of_customers(self, customers: Sequence[str]) -> list[dict[str, Any]]:
        """Every ticket of these customer ids, whole and in ``_id`` order (a data export)."""
        return [d async for d in self._collection.find({"customer": {"$in": list(customers)}}).sort("_id", ASCENDING)]

    async def anonymise(self, customers: Sequence[str], *, keep: Sequence[str], marker: str) -> int:
        """Strip these customers' tickets to the ``keep`` fields, ``customer`` set to ``marker``
        (an erasure: the ticket's facts stay for warranty and statistics); returns how many."""
        n = 0
        async for ticket in self._collection.find({"customer": {"$in": list(customers)}}):
            kept = {k: ticket[k] for k in keep if k in ticket}
            await self._collection.replace_one({"_id": ticket["_id"]}, {**kept, "customer": marker})
            n += 1
        if n:
            self._changed()
        return n

    async def change_status(self, ticket_id: str, status: str, *, at: float, by: str) -> Ticket | None:
        """The ticket after moving it to ``status``; ``None`` if it had that status already."""
        entry = {"at": at, "step": "status", "by": by, "ok": True, "detail": {"status": status}}
        found = await update_and_get(
            self._collection, {"_id": ticket_id, "status": {"$ne": status}},
            {"$set": {"status": status, "status_at": at}, "$push": {"timeline": entry}},
        )
        if found is not None:
            self._changed()
        return cast(Ticket | None, found)

    async def needing_attention(self, *, overdue_before: float, limit: int = 100) -> list[Ticket]:
        """Tickets an agent or a marketer should look at: a step outside failed (they carry
        ``attention``), or still open after ``overdue_before``; newest first."""
        query = {"$or": [{"attention.at": {"$gt": 0}}, {"status": {"$in": list(OPEN_STATUSES)}, "created_at": {"$lt": overdue_before}}]}
        return [cast(Ticket, d) async for d in self._collection.find(query).sort("created_at", DESCENDING).limit(limit)]

    async def engineer_load(self) -> list[dict[str, Any]]:
        """Open tickets per engineer (most loaded first)."""
        load: dict[str, dict[str, Any]] = {}
        query = {"status": {"$in": list(OPEN_STATUSES)}, "engineer.id": {"$exists": True}}
        async for t in self._collection.find(query, projection={"engineer": 1, "status": 1}):
            eng = t.get("engineer") or {}
            row = load.setdefault(str(eng.get("id")), {"id": eng.get("id"), "name": eng.get("name", ""), "open": 0, "on_the_way": 0})
            row["open"] += 1
            row["on_the_way"] += int(t.get("status") == "on_the_way")
        return sorted(load.values(), key=lambda r: -int(r["open"]))
