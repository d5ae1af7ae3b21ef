"""Contracts as the renewal skill reads them: the facts rules see, the quote for the next
term, lookups by chat identity or reference, and whether a contract needs review first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import Document, find_by_ids
from preferences.clock import Clock
from skills.renewal.rule_store import RuleStore
from skills.renewal.rules import matching_actions, validate_rule
from skills.renewal.settings import RenewalSettings

DAY = 86_400.0


class ContractBook:
    def __init__(self, db: AsyncDatabase[Document], rules: RuleStore, settings: RenewalSettings, clock: Clock) -> None:
        self.contracts = db["contracts"]
        self.customers = db["crm_customers"]
        self.rules = rules
        self.settings = settings
        self.clock = clock

    async def ensure_indexes(self) -> None:
        await self.contracts.create_indexes([IndexModel([("end", ASCENDING)]), IndexModel([("customer", ASCENDING), ("end", ASCENDING)])])

    def facts(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None, offset: int | None = None) -> Document:
        """What rule conditions are evaluated on."""
        now = self.clock.now()
        return {
            **contract,
            "customer": dict(customer or {}),
            "days_left": int((float(contract.get("end", now)) - now) // DAY),
            "offset": offset,
            "past_contracts": int(contract.get("past_contracts", 0)),
        }

    def quote(self, contract: Mapping[str, Any]) -> Document:
        amount = round(float(contract.get("amount", 0)) * (1 + self.settings.uplift), -2)
        start = float(contract.get("end", self.clock.now()))
        return {"amount": amount, "currency": contract.get("currency", "CNY"), "start": start, "months": self.settings.term_months}

    async def contracts_of(self, identity: str) -> tuple[Document | None, list[Document]]:
        """The CRM customer behind a chat identity and their contracts, soonest end first."""
        customer = await self.customers.find_one({"identities": identity})
        if customer is None:
            return None, []
        cursor = self.contracts.find({"customer": customer["_id"], "end": {"$gt": self.clock.now()}}).sort("end", ASCENDING).limit(10)
        return customer, [c async for c in cursor]

    async def find_by_reference(self, *, contract_no: str = "", phone: str = "") -> str | None:
        """The CRM customer id a contract number or a phone number on file points to."""
        if contract_no:
            contract = await self.contracts.find_one({"_id": contract_no}, {"customer": 1})
            if contract is not None:
                return str(contract["customer"])
        if phone:
            customer = await self.customers.find_one({"phone": phone}, {"_id": 1})
            if customer is not None:
                return str(customer["_id"])
        return None

    async def needs_review(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Rule actions that stop the bot quoting (legal review, hand-off), evaluated now."""
        rules = await self.rules.enabled()
        stored = [{"action": "legal_review", "rule": contract["legal_review"].get("rule")}] if (contract.get("legal_review") or {}).get("required") else []
        now = [a for a in matching_actions(rules, self.facts(contract, customer)) if a["action"] in ("legal_review", "handoff")]
        return stored + [a for a in now if a not in stored]

    async def reminders_due(self, start: float, end: float) -> list[tuple[float, int, int]]:
        """(reminder day, offset, contracts) for reminders falling due in ``[start, end)``:
        a contract's reminder at ``offset`` days falls due ``offset`` days before its end."""
        out: list[tuple[float, int, int]] = []
        for offset in self.settings.offsets:
            counts: dict[float, int] = {}
            query = {"end": {"$gte": start + offset * DAY, "$lt": end + offset * DAY}, "reminded": {"$ne": offset}}
            async for c in self.contracts.find(query, projection={"end": 1}):
                day = (float(c["end"]) - offset * DAY - start) // DAY * DAY + start
                counts[day] = counts.get(day, 0) + 1
            out += [(day, offset, n) for day, n in counts.items()]
        return sorted(out)

    async def rule_hits(self, rule: Mapping[str, Any], limit: int = 500) -> list[Document]:
        """The contracts a rule would act on if the scan ran now: each contract inside
        the reminder window (its tightest offset), with the facts the rule reads."""
        clean = validate_rule(rule)
        now = self.clock.now()
        offsets = self.settings.offsets
        out: list[Document] = []
        window = {"end": {"$gt": now, "$lte": now + offsets[0] * DAY}}
        contracts = [c async for c in self.contracts.find(window).sort("end", ASCENDING)]
        customers = await find_by_ids(self.customers, {c.get("customer") for c in contracts if c.get("customer")})
        for contract in contracts:
            days = (float(contract["end"]) - now) / DAY
            offset = min(o for o in offsets if days <= o)
            facts = self.facts(contract, customers.get(contract.get("customer")), offset)
            if matching_actions([{**clean, "enabled": True}], facts):
                out.append({"contract": contract["_id"], "customer": contract.get("customer"), "offset": offset,
                            "days_left": facts["days_left"], "amount": contract.get("amount"), "product": contract.get("product", "")})
                if len(out) >= limit:
                    break
        return out

    async def owners_of(self, pref_customer: str, identities: Sequence[str]) -> list[str]:
        """The CRM customers behind a preference customer (its id or any chat identity)."""
        query = {"$or": [{"pref_customer": pref_customer}, {"identities": {"$in": list(identities)}}]}
        return [c["_id"] async for c in self.customers.find(query, {"_id": 1}).limit(20)]

    async def of_owners(self, owners: Sequence[str], limit: int = 200) -> list[Document]:
        """Their contracts, soonest end first."""
        return [c async for c in self.contracts.find({"customer": {"$in": list(owners)}}).sort("end", ASCENDING).limit(limit)]
