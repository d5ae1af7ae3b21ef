"""What Kefu knows about customers, their devices and contracts, engineers and parts.

Collections (all indexed for the queries below; the embedded MongoDB-protocol server is
slow on unindexed queries and ``$in``):

``crm_customers``
    ``{_id, name, company, identities: ["wechat:demo:o..."], address, location: [lat, lng],
    region, registered_capital, contacts: [{role, name, email, wechat}]}``
``devices``
    ``{_id: serial, customer, model, installed_at, contract_id}``
``contracts``
    ``{_id, customer, product, start, end, amount, currency, sales_owner: {name, union_id},
    contacts, kind: "maintenance" | "warranty" | "supply", sla_hours}``
``engineers``
    ``{_id, name, union_id, qualification, cert_no, categories: [..], completed: {cat: n},
    nps, rating, location: [lat, lng], load, region}``
``parts``
    ``{_id: part_no, name, categories: [..], models: [..]}``
"""

from __future__ import annotations

import re

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import Document

# Fault text -> category; first match wins. Categories name the engineers' experience.
_CATEGORIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cooling", re.compile(r"制冷|不冷|不凉|温度|cool|cold|warm|temperature", re.I)),
    ("leak", re.compile(r"漏水|滴水|漏|leak|drip|water", re.I)),
    ("power", re.compile(r"开不了机|不开机|没电|跳闸|断电|power|won't start|dead|turn on", re.I)),
    ("noise", re.compile(r"噪音|异响|响|振动|noise|noisy|rattl|vibrat", re.I)),
    ("display", re.compile(r"屏|显示|报错|故障码|display|screen|error code", re.I)),
)


def fault_category(fault: str) -> str:
    """The fault's category (cooling, leak, power, noise, display) or ``general``."""
    for name, pattern in _CATEGORIES:
        if pattern.search(fault):
            return name
    return "general"


class Catalog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.customers = db["crm_customers"]
        self.devices = db["devices"]
        self.contracts = db["contracts"]
        self.engineers = db["engineers"]
        self.parts = db["parts"]

    async def ensure_indexes(self) -> None:
        await self.customers.create_indexes([IndexModel([("identities", ASCENDING)])])
        await self.devices.create_indexes([IndexModel([("customer", ASCENDING), ("model", ASCENDING)])])
        await self.contracts.create_indexes(
            [IndexModel([("customer", ASCENDING), ("end", DESCENDING)]), IndexModel([("end", ASCENDING)])]
        )
        await self.engineers.create_indexes([IndexModel([("categories", ASCENDING), ("nps", DESCENDING)])])
        await self.parts.create_indexes([IndexModel([("categories", ASCENDING)])])

    async def customer_of(self, identity: str) -> Document | None:
        """The CRM customer behind a channel identity (``wechat:demo:o...``)."""
        return await self.customers.find_one({"identities": identity})

    async def device(self, customer: str, model: str | None) -> Document | None:
        """The customer's device of ``model``, or their only device when no model is given."""
        if model:
            found = await self.devices.find_one({"customer": customer, "model": model.upper()})
            if found is not None:
                return found
            return await self.devices.find_one({"customer": customer, "model": model})
        docs = [d async for d in self.devices.find({"customer": customer}).limit(2)]
        return docs[0] if len(docs) == 1 else None

    async def contract(self, contract_id: str) -> Document | None:
        return await self.contracts.find_one({"_id": contract_id}) if contract_id else None

    async def engineers_for(self, category: str, min_nps: float, limit: int = 200) -> list[Document]:
        cursor = self.engineers.find({"categories": category, "nps": {"$gt": min_nps}}).limit(limit)
        return [d async for d in cursor]

    async def likely_parts(self, category: str, model: str, limit: int = 3) -> list[Document]:
        found = [d async for d in self.parts.find({"categories": category}).limit(20)]
        # Parts made for this model first; generic ones (no models listed) after.
        found.sort(key=lambda p: (model not in p.get("models", []), bool(p.get("models"))))
        return [p for p in found if not p.get("models") or model in p.get("models", [])][:limit]
