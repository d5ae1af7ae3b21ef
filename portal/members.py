"""Who on the customer's side may use the portal, and which modules each person sees.

The customer's own account (reached from their chat) sees every module. A colleague is
invited by email or phone with a set of modules (the CFO: contracts; the engineering
lead: tickets), signs in through a one-time link, and can be revoked; the portal records
when each person last looked. :class:`Members` owns the ``portal_members`` collection.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from webui.errors import BadInput, NotFound

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s-]{6,20}$")
SEEN_EVERY_S = 60.0  # last-seen is written at most this often per person


class Module(str, enum.Enum):
    TICKETS = "tickets"
    CONTRACTS = "contracts"
    NOTIFY = "notify"  # how you hear from us
    RULES = "rules"
    DATA = "data"  # what we hold, export, erasure: the customer's own account only
    PEOPLE = "people"  # who may see what: the customer's own account only


ALL_MODULES = frozenset(Module)
#: What a colleague may be given; data and people stay with the account holder.
GRANTABLE = (Module.TICKETS, Module.CONTRACTS, Module.NOTIFY, Module.RULES)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a portal session."""

    customer: str
    member: str  # empty: the account holder
    label: str  # the colleague's email or phone; empty for the account holder
    modules: frozenset[Module]

    @property
    def owner(self) -> bool:
        return not self.member

    @property
    def actor(self) -> str:
        """How changes are attributed in the history and the audit log."""
        return self.customer if self.owner else f"{self.customer}/member:{self.member}"

    def may(self, module: Module) -> bool:
        return module in self.modules


def owner_viewer(customer: str) -> Viewer:
    return Viewer(customer, "", "", ALL_MODULES)


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    customer: str
    contact: str
    kind: str  # email or phone
    modules: tuple[Module, ...]
    invited_by: str
    invited_at: float
    last_seen: float | None
    revoked_at: float | None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Member:
        return cls(
            str(doc["_id"]), str(doc["customer"]), str(doc["contact"]), str(doc["kind"]),
            tuple(Module(m) for m in doc["modules"]), str(doc["invited_by"]), float(doc["invited_at"]),
            doc.get("last_seen"), doc.get("revoked_at"),
        )

    def viewer(self) -> Viewer:
        return Viewer(self.customer, self.id, self.contact, frozenset(self.modules))


def parse_contact(raw: str) -> tuple[str, str]:
    """``(kind, normalised contact)`` for an email address or a phone number."""
    value = raw.strip()
    if _EMAIL.match(value):
        return "email", value.lower()
    if _PHONE.match(value):
        return "phone", re.sub(r"[\s-]", "", value)
    raise BadInput("enter an email address or a phone number")


class Members:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db["portal_members"]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes([IndexModel([("customer", ASCENDING), ("invited_at", ASCENDING)])])

    async def invite(self, customer: str, contact: str, modules: list[str], *, invited_by: str) -> Member:
        kind, normalised = parse_contact(contact)
        try:
            chosen = tuple(sorted({Module(m) for m in modules}, key=GRANTABLE.index))
        except ValueError:
            raise BadInput("unknown module") from None
        if not chosen or any(m not in GRANTABLE for m in chosen):
            raise BadInput("choose at least one of: " + ", ".join(m.value for m in GRANTABLE))
        doc = {
            "_id": secrets.token_hex(8), "customer": customer, "contact": normalised, "kind": kind,
            "modules": [m.value for m in chosen], "invited_by": invited_by, "invited_at": time.time(),
            "last_seen": None, "revoked_at": None,
        }
        await self._collection.insert_one(doc)
        return Member.of(doc)

    async def of_customer(self, customer: str) -> list[Member]:
        cursor = self._collection.find({"customer": customer}).sort("invited_at", ASCENDING).limit(200)
        return [Member.of(d) async for d in cursor]

    async def get(self, customer: str, member_id: str) -> Member:
        """The customer's member; NotFound for an id of another customer's."""
        doc = await self._collection.find_one({"_id": member_id, "customer": customer})
        if doc is None:
            raise NotFound("no such person")
        return Member.of(doc)

    async def active(self, customer: str, member_id: str) -> Member | None:
        doc = await self._collection.find_one({"_id": member_id, "customer": customer, "revoked_at": None})
        return None if doc is None else Member.of(doc)

    async def revoke(self, customer: str, member_id: str) -> Member:
        member = await self.get(customer, member_id)
        await self._collection.update_one({"_id": member_id, "customer": customer}, {"$set": {"revoked_at": time.time()}})
        return member

    async def seen(self, member: Member) -> None:
        now = time.time()
        if member.last_seen is None or now - member.last_seen > SEEN_EVERY_S:
            await self._collection.update_one({"_id": member.id}, {"$set": {"last_seen": now}})
