"""Past repairs as a case library: the one owner of ``repair_cases``.

``{_id: ticket id, fault, category, model, cause, parts: [part_no], minutes_to_fix,
self_fixed, self_check: {zh, en}, closed_at}``. A case is written when a ticket is
closed with the engineer's resolution (``POST /api/tickets/{id}/status`` with ``done``
and a ``resolution``), or when a customer's own check fixed it.

:meth:`CaseLibrary.diagnose` ranks the causes and parts of past cases of the same fault
category, this model's cases counted double; when at least ``SELF_FIX_SHARE`` of at
least ``SELF_FIX_MIN_CASES`` cases were fixed by the customer (a tripped breaker, a
blocked filter) and the steps are known, it returns them so the bot offers the check
before it sends an engineer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
SELF_FIX_SHARE = 0.4
SELF_FIX_MIN_CASES = 3


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the engineer (or the customer's own check) found."""

    cause: str
    parts: tuple[str, ...] = ()
    self_fixed: bool = False
    self_check: Mapping[str, str] = field(default_factory=dict)  # language -> steps


def resolution_from_json(data: Any) -> Resolution:
    """The API's ``resolution``; ``ValueError`` naming the bad field."""
    if not isinstance(data, Mapping):
        raise ValueError("resolution: an object {cause, parts, self_fixed, self_check}")
    cause = data.get("cause")
    if not isinstance(cause, str) or not cause.strip() or len(cause) > 200:
        raise ValueError("resolution.cause: 1-200 characters")
    parts = data.get("parts") or []
    if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts) or len(parts) > 20:
        raise ValueError("resolution.parts: a list of part numbers")
    steps = data.get("self_check") or {}
    if not isinstance(steps, Mapping) or not all(k in ("zh", "en") and isinstance(v, str) and len(v) <= 1000 for k, v in steps.items()):
        raise ValueError("resolution.self_check: {zh, en} steps of up to 1000 characters")
    return Resolution(cause.strip(), tuple(parts), bool(data.get("self_fixed", False)), dict(steps))


@dataclass(frozen=True, slots=True)
class Diagnosis:
    cases: int
    causes: tuple[tuple[str, int], ...]  # most likely first, with how many cases
    parts: tuple[str, ...]  # part numbers, most used first
    self_check: Mapping[str, str]  # steps to offer first, empty when the library does not say so

    def to_json(self) -> Document:
        return {"cases": self.cases, "causes": [{"cause": c, "cases": n} for c, n in self.causes],
                "parts": list(self.parts), "self_check": bool(self.self_check)}


NO_DIAGNOSIS = Diagnosis(0, (), (), {})


class CaseLibrary:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.cases = db["repair_cases"]

    async def ensure_indexes(self) -> None:
        await self.cases.create_indexes([IndexModel([("category", ASCENDING), ("closed_at", DESCENDING)])])

    async def learn(self, ticket: Mapping[str, Any], resolution: Resolution, *, at: float | None = None) -> None:
        closed = time.time() if at is None else at
        await self.cases.replace_one({"_id": ticket["_id"]}, {
            "fault": ticket.get("fault", ""), "category": ticket.get("category", ""),
            "model": str(ticket.get("device_model") or "").upper(), "cause": resolution.cause,
            "parts": list(resolution.parts), "self_fixed": resolution.self_fixed,
            "self_check": dict(resolution.self_check), "closed_at": closed,
            "minutes_to_fix": round((closed - float(ticket.get("created_at", closed))) / 60),
        }, upsert=True)

    async def diagnose(self, category: str, model: str, *, limit: int = 500) -> Diagnosis:
        found = [d async for d in self.cases.find({"category": category}).sort("closed_at", DESCENDING).limit(limit)]
        if not found:
            return NO_DIAGNOSIS
        model = model.upper()
        causes: Counter[str] = Counter()
        parts: Counter[str] = Counter()
        for case in found:
            weight = 2 if model and case.get("model") == model else 1
            causes[case["cause"]] += weight
            for part in case.get("parts", []):
                parts[part] += weight
        fixed = [c for c in found if c.get("self_fixed") and c.get("self_check")]
        steps: Mapping[str, str] = {}
        if len(found) >= SELF_FIX_MIN_CASES and len(fixed) / len(found) >= SELF_FIX_SHARE:
            commonest = Counter(c["cause"] for c in fixed).most_common(1)[0][0]
            steps = next(c["self_check"] for c in fixed if c["cause"] == commonest)
        return Diagnosis(len(found), tuple(causes.most_common(3)), tuple(p for p, _ in parts.most_common(5)), steps)
