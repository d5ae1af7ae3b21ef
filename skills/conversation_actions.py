"""What the skills did in a conversation, for the agent reading it: repair tickets with
their timelines, renewal quotes (the opportunities opened in chat), delivery remedies
and complaint cases. Facts only: no customer-written text (a fault description, an
address) goes into them, since the same words are in the messages beside them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bot.customer_card import ActionStep, CardSubject, Facts, SkillAction
from skills.services import SkillServices

# Timeline details worth showing; the rest (looked-up records, file paths) are not.
_STEP_FACTS = ("status", "engineer", "eta_min", "number", "stars", "error", "skipped", "for", "task_id")


def skill_actions(services: SkillServices) -> Callable[[CardSubject], Awaitable[Sequence[SkillAction]]]:
    async def actions(subject: CardSubject) -> Sequence[SkillAction]:
        cid = subject.conversation
        tickets, opportunities, remedies, cases = await asyncio.gather(
            services.tickets.of_conversation(subject.customer, cid),
            services.renewals.opportunities_in(cid),
            services.reviews.remedies_in(cid),
            services.cases.of_conversation(cid),
        )
        found = [_ticket(dict(t)) for t in tickets]
        found += [_renewal(o) for o in opportunities]
        found += [_remedy(r) for r in remedies]
        found += [_case(c) for c in cases]
        return sorted(found, key=lambda a: a.at)

    return actions


def facts(**values: Any) -> Facts:
    """The given facts that have a value, in order."""
    return tuple((k, str(v)) for k, v in values.items() if v not in (None, "", False))


def _ticket(t: Mapping[str, Any]) -> SkillAction:
    steps = tuple(
        ActionStep(
            at=float(s.get("at") or 0.0),
            step=str(s.get("step", "")),
            facts=facts(**{k: v for k, v in (s.get("detail") or {}).items() if k in _STEP_FACTS and not isinstance(v, (dict, list))}),
            ok=s.get("ok") is not False,
        )
        for s in t.get("timeline") or ()
    )
    return SkillAction(
        "ticket", str(t.get("number") or t["_id"]), float(t.get("created_at") or 0.0),
        facts(status=t.get("status"), model=t.get("device_model"), engineer=(t.get("engineer") or {}).get("name"), eta=t.get("eta")),
        steps,
    )


def _renewal(o: Mapping[str, Any]) -> SkillAction:
    q = o.get("quote") or {}
    price = f"{q.get('currency', '')} {float(q.get('amount') or 0):,.0f}" if q else None
    return SkillAction(
        "renewal", str(o.get("contract") or o["_id"]), float(o.get("created_at") or 0.0),
        facts(quote=price, term_months=q.get("months"), status=o.get("status"), sales_owner=o.get("owner"),
              todo=o.get("todo") or ("failed" if o.get("todo_failed") else None)),
    )


def _remedy(r: Mapping[str, Any]) -> SkillAction:
    f = r.get("facts") or {}
    coupon = r.get("coupon") or {}
    return SkillAction(
        "remedy", str(f.get("order_id") or r.get("order_id") or r["_id"]), float(r.get("created_at") or 0.0),
        facts(carrier=f.get("carrier"), promised_days=f.get("promised_days"), days_late=f.get("days_late"),
              compensation=f"{f.get('currency', '')} {float(f.get('compensation') or 0):g}" if f.get("compensation") else None,
              coupon=" ".join(str(coupon.get(k, "")) for k in ("code", "currency", "amount")) if coupon else None,
              status=r.get("status")),
    )


def _case(c: Mapping[str, Any]) -> SkillAction:
    return SkillAction("case", str(c["_id"]), float(c.get("opened_at") or 0.0), facts(product=c.get("product"), status=c.get("status")))
