"""A bare visit time after a repair was dispatched: the customer wants that visit moved.

"tomorrow morning" or "改到明天上午吧" with no form open reads to NLU like small talk
("morning" is half of "good morning"); said right after a dispatch it is about the visit.
With an open ticket, the wish is put on the ticket's timeline and the ticket flagged for
an agent, who agrees the new time with the engineer (the engineer's calendar and the
to-do systems are theirs to change), and the customer is told exactly that. A visit
already booked in that window needs no change; without an open ticket the customer is
asked what the time is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bot.conversation.forms import ESCAPES
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from skills.repair_dispatch.tickets import OPEN_STATUSES, Tickets
from skills.repair_dispatch.visit_time import only_a_time, parse_visit_time


class VisitTimeAfterDispatch(Skill):
    name = "repair_visit_time"

    def __init__(
        self, templates: Templates, tickets: Tickets, *, timezone: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.templates = templates
        self.tickets = tickets
        self.timezone = timezone
        self.clock = clock

    def accepts(self, turn: Turn) -> bool:
        state = turn.state
        if state is None or state.form is not None or state.awaiting or turn.intent in ESCAPES:
            return False
        return only_a_time(turn.text)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        window = parse_visit_time(turn.text, now=self.clock(), timezone=self.timezone)
        assert window is not None  # only_a_time() accepted it
        ticket = await self.tickets.latest(turn.state.customer)
        if ticket is None or ticket.get("status") not in OPEN_STATUSES:
            return (Reply(text=self.templates.render("repair_time_without_ticket", turn.language, window=window)),)
        visit = ticket.get("visit") or {}
        if visit.get("slot") == window.slot_key():
            return (Reply(text=self.templates.render("repair_time_unchanged", turn.language, ticket=ticket, window=window)),)
        now = self.clock()
        wish = {"slot": window.slot_key(), "day": window.day, "part": window.part, "start": window.start, "end": window.end}
        await self.tickets.record(
            str(ticket["_id"]),
            {"reschedule": wish, "attention": {"reason": "reschedule", "at": now}},
            [{"at": now, "step": "reschedule_requested", "by": "customer", "ok": True, "detail": wish}],
        )
        return (Reply(text=self.templates.render("repair_reschedule_requested", turn.language, ticket=ticket, window=window)),)
