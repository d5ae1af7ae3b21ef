"""The skills' part of an agent's customer card: the latest repair ticket, open contracts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.customer_card import CardLine, CardSubject
from skills.services import SkillServices


def skill_card(services: SkillServices) -> Callable[[CardSubject], Awaitable[Sequence[CardLine]]]:
    async def lines(subject: CardSubject) -> Sequence[CardLine]:
        out: list[CardLine] = []
        ticket = await services.tickets.latest(subject.customer)
        if ticket is not None:
            what = " · ".join(x for x in (ticket.get("number", ""), ticket.get("status", ""), ticket.get("device_model", "")) if x)
            out.append(CardLine("tickets", what, at=ticket.get("created_at")))
        _crm, contracts = await services.renewals.contracts_of(subject.customer)
        for contract in contracts:
            out.append(CardLine("contracts", str(contract.get("product") or contract["_id"]), at=float(contract.get("end", 0)) or None))
        return out

    return lines
