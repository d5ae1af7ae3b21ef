"""The customer's own rules on notifications to their side.

"When a renewal quote is over CNY 1,000,000, also email our CTO"; "send repair updates
for site B to the site manager". A rule names a topic, one condition on the
notification's data and an email address that gets a copy (through the notification
engine, so the copy keeps its own preferences and is deduplicated by key).
:class:`CustomerRules` owns ``pref_rules``; :func:`matches` is pure, so the portal's
preview runs the same test over recent notifications that live sends run.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from preferences.errors import InvalidPreference
from preferences.model import Topic

CONDITIONS = ("amount_over", "text_contains")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_AMOUNT_FIELDS = ("amount", "quote_amount", "total")
_RULE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    customer: str
    topic: Topic
    condition: str  # one of CONDITIONS
    value: str  # the threshold (amount_over) or the text looked for (text_contains)
    email: str  # who gets a copy
    created_by: str
    created_at: float

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Rule:
        return cls(
            str(doc["_id"]), str(doc["customer"]), Topic(doc["topic"]), str(doc["condition"]), str(doc["value"]),
            str(doc["email"]), str(doc.get("created_by", "")), float(doc.get("created_at", 0.0)),
        )

    def as_doc(self) -> dict[str, Any]:
        return {"_id": self.id, "customer": self.customer, "topic": self.topic.value, "condition": self.condition,
                "value": self.value, "email": self.email, "created_by": self.created_by, "created_at": self.created_at}


def amount_of(data: Mapping[str, Any]) -> float | None:
    """The money amount a notification speaks of ("CNY 1,030,000" or a number)."""
    for name in _AMOUNT_FIELDS:
        value = data.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            found = _NUMBER.search(value)
            if found:
                return float(found.group().replace(",", ""))
    return None


def matches(rule: Rule, topic: str, data: Mapping[str, Any]) -> bool:
    if topic != rule.topic.value:
        return False
    if rule.condition == "amount_over":
        amount = amount_of(data)
        return amount is not None and amount > float(rule.value)
    needle = rule.value.casefold()
    return any(isinstance(v, str) and needle in v.casefold() for v in data.values())


def validate(topic: str, condition: str, value: str, email: str) -> tuple[Topic, str, str, str]:
    try:
        topic_e = Topic(topic)
    except ValueError:
        raise InvalidPreference(f"topic: unknown {topic!r}", field="topic") from None
    if condition not in CONDITIONS:
        raise InvalidPreference(f"condition: expected one of {', '.join(CONDITIONS)}", field="condition")
    value = value.strip()
    if condition == "amount_over":
        try:
            value = f"{float(value.replace(',', '')):.0f}"
        except ValueError:
            raise InvalidPreference("value: expected an amount", field="value") from None
    elif not value or len(value) > 100:
        raise InvalidPreference("value: expected some text (at most 100 characters)", field="value")
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidPreference("email: expected an email address", field="email")
    return topic_e, condition, value, email


class CustomerRules:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db["pref_rules"]

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes([IndexModel([("customer", ASCENDING), ("topic", ASCENDING)])])

    async def add(self, customer: str, topic: str, condition: str, value: str, email: str, *, created_by: str) -> Rule:
        topic_e, condition, value, email = validate(topic, condition, value, email)
        rule = Rule(secrets.token_hex(6), customer, topic_e, condition, value, email, created_by, time.time())
        await self._collection.insert_one(rule.as_doc())
        return rule

    async def of_customer(self, customer: str) -> list[Rule]:
        return [Rule.of(d) async for d in self._collection.find({"customer": customer}).sort("created_at", ASCENDING).limit(100)]

    async def remove(self, customer: str, rule_id: str) -> Rule | None:
        doc = await self._collection.find_one_and_delete({"_id": rule_id, "customer": customer})
        return None if doc is None else Rule.of(doc)

    async def matching(self, customer: str, topic: str, data: Mapping[str, Any]) -> list[Rule]:
        return (await self.matching_many([(customer, topic, data)]))[0]

    async def matching_many(self, asked: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[list[Rule]]:
        """For each (customer, topic, data) of a batch of notifications, the rules it
        matches. Rules are few: the batch's customers are looked up in long ``$in`` lists
        (the embedded server's cost of a list grows with the documents it finds)."""
        customers = sorted({c for c, _t, _d in asked})
        topics = sorted({t for _c, t, _d in asked})
        found: dict[str, list[Rule]] = {}
        for i in range(0, len(customers), _RULE_CHUNK):
            query = {"customer": {"$in": customers[i : i + _RULE_CHUNK]}, "topic": {"$in": topics}}
            async for doc in self._collection.find(query):
                rule = Rule.of(doc)
                found.setdefault(rule.customer, []).append(rule)
        return [[r for r in found.get(c, ()) if matches(r, t, d)] for c, t, d in asked]
