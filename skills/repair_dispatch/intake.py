"""The repair report form and the status question.

``report_repair`` opens a form for device model, fault, address and preferred time; when
it is complete a ticket is opened in the ``tickets`` collection, with every step on its
timeline so an agent sees what the bot did. When past cases say customers usually fix
this fault themselves, the ticket waits while the bot offers the self-check steps
(:class:`SelfCheckAnswer` takes the reply: fixed closes the ticket as a case, anything
else dispatches). ``ask_repair_status`` answers from the customer's latest ticket.
"""

from __future__ import annotations

import re
from typing import Any
from collections.abc import Mapping, Sequence

from bot.conversation.forms import Fit, FormSkill, Slot
from bot.conversation.questions import is_question
from bot.conversation.state import ConversationState, FormState
from bot.routing import Reply, Skill, Turn
from bot.messages import ReplyKind
from bot.templates import Templates
from skills.notifier import Notifier
from skills.repair_dispatch.assign import RepairDispatch
from skills.repair_dispatch.cases import Resolution
from skills.repair_dispatch.catalog import Catalog, fault_category
from skills.repair_dispatch.models import model_in, resolve_model
from skills.repair_dispatch.tickets import Tickets
from skills.repair_dispatch.visit_time import names_a_time

# What addresses are made of: administrative units, streets and house numbers.
_ADDRESS = re.compile(
    r"[省市区县镇乡村]|路|街|巷|弄|胡同|小区|大厦|公寓|花园|\d+\s*(?:号|栋|幢|楼|室|单元|层)"
    r"|\b(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|apt|apartment|suite|floor|building|district|city)\b",
    re.I,
)


class RepairReportForm(FormSkill):
    name = "repair_report"
    triggers = frozenset({"report_repair"})
    slots = (
        Slot("device_model", "ask_device_model", entity="device_model", free_text=True),
        Slot("fault", "ask_fault", entity="fault", free_text=True),
        Slot("address", "ask_address", entity="address", free_text=True),
        Slot("preferred_time", "ask_preferred_time", entity="time", free_text=True),
    )

    def __init__(
        self,
        templates: Templates,
        tickets: Tickets,
        dispatch: RepairDispatch | None = None,
        notifier: Notifier | None = None,
        *,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__(templates)
        self.tickets = tickets
        self.catalog = catalog
        # Without dispatch (no connectors wired) the form only opens the ticket and an
        # agent assigns an engineer by hand.
        self.dispatch = dispatch
        self.notifier = notifier

    def fits(self, slot: Slot, text: str) -> Fit:
        """An address has streets or numbers and is neither a time nor a question; a time
        is a day, a part of the day or "as soon as possible"; a model has letters and digits."""
        if slot.name == "address":
            if _ADDRESS.search(text) and not is_question(text):
                return Fit.YES
            return Fit.NO if names_a_time(text) or is_question(text) else Fit.MAYBE
        if slot.name == "preferred_time":
            if names_a_time(text):
                return Fit.YES
            return Fit.NO if _ADDRESS.search(text) else Fit.MAYBE
        if slot.name == "device_model":
            return Fit.YES if model_in(text) else Fit.MAYBE
        return Fit.MAYBE

    async def check(self, turn: Turn, slot: Slot, value: str, *, asked: bool) -> str:
        """A device model is one we know, spelled as we spell it ("QT 7,700" -> QT-7700);
        an extracted one we do not know is dropped, a typed answer to our question kept."""
        if slot.name != "device_model" or self.catalog is None:
            return value
        known = await self.catalog.known_models()
        if not known:  # no catalogue to judge by: a model has letters and digits ("10" has not)
            return model_in(value) or (value if asked else "")
        return resolve_model(value, "" if asked else turn.text, known) or (value if asked else "")

    async def prefill(self, turn: Turn, form: FormState) -> None:
        """Known customers: their device (when they have one), address on file, and for a
        contract with an SLA "as soon as possible" instead of asking for a time. A model
        the message names in a way NLU did not extract ("QT seven seven hundred") counts."""
        if self.catalog is not None and not form.slots.get("device_model"):
            named = resolve_model(None, turn.text, await self.catalog.known_models())
            if named:
                form.slots["device_model"] = named
        if self.dispatch is None or turn.state is None:
            return
        known = await self.dispatch.known(turn.state.customer, form.slots.get("device_model"))
        if known is None:
            return
        customer, device, contract = known.customer, known.device, known.contract
        if device is not None and not form.slots.get("device_model"):
            form.slots["device_model"] = str(device.get("model", ""))
        if customer.get("address") and not form.slots.get("address"):
            form.slots["address"] = str(customer["address"])
        if contract and contract.get("sla_hours") and not form.slots.get("preferred_time"):
            form.slots["preferred_time"] = self.templates.render("repair_asap", turn.language, hours=contract["sla_hours"])

    async def submit(self, turn: Turn, state: ConversationState, slots: Mapping[str, str]) -> Sequence[Reply]:
        # The same fault on the same device again: the open ticket, with what was just said added.
        same = await self.tickets.open_for(
            state.customer, slots.get("device_model", ""), fault_category(slots.get("fault", "")), besides=turn.message.key
        )
        if same is not None:
            await self.tickets.add_note(str(same["_id"]), turn.text, by="customer")
            return (Reply(text=self.templates.render("repair_already_open", turn.language, ticket=same)),)
        ticket = await self.tickets.open(
            customer=state.customer, conversation=state.conversation, source_message=turn.message.key, fields=slots
        )
        if self.dispatch is None:
            return (Reply(text=self.templates.render("repair_ticket_opened", turn.language, ticket=ticket)),)
        diagnosis = await self.dispatch.diagnose(fault_category(slots.get("fault", "")), slots.get("device_model", ""))
        if diagnosis.self_check:
            steps = diagnosis.self_check.get(turn.language) or next(iter(diagnosis.self_check.values()))
            cause = diagnosis.causes[0][0] if diagnosis.causes else ""
            await self.tickets.record(ticket["_id"], {"self_check": {"cause": cause, "offered": True}},
                                      [{"at": turn.message.timestamp, "step": "self_check", "by": "bot", "ok": True,
                                        "detail": {"cause": cause}}])
            state.active_skill = SELF_CHECK
            return (Reply(text=self.templates.render("repair_self_check", turn.language, ticket=ticket, steps=steps)),)
        return await dispatched(turn, self.templates, self.dispatch, self.notifier, ticket)


SELF_CHECK = "repair_self_check"
_FIXED = re.compile(r"好了|修好|解决了|可以了|能用了|正常了|没问题了|fixed|works now|working now|solved|that helped", re.I)


class SelfCheckAnswer(Skill):
    """The customer's answer after the self-check steps: fixed, or send the engineer."""

    name = "repair_self_check"

    def __init__(self, templates: Templates, tickets: Tickets, dispatch: RepairDispatch, notifier: Notifier | None = None) -> None:
        self.templates = templates
        self.tickets = tickets
        self.dispatch = dispatch
        self.notifier = notifier

    def accepts(self, turn: Turn) -> bool:
        return turn.state is not None and turn.state.active_skill == SELF_CHECK

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None
        state.active_skill = ""
        ticket = await self.tickets.latest(state.customer)
        if ticket is None or ticket.get("status") != "new":
            return (Reply(text=self.templates.render("repair_status_none", turn.language)),)
        if _FIXED.search(turn.text) and not re.search(r"没|不|not|n't", turn.text, re.I):
            cause = str((ticket.get("self_check") or {}).get("cause") or "self-check")
            await self.dispatch.set_status(
                str(ticket["_id"]), "done", by="customer", resolution=Resolution(cause, self_fixed=True), tell=False
            )
            return (Reply(text=self.templates.render("repair_self_fixed", turn.language, ticket=ticket)),)
        return await dispatched(turn, self.templates, self.dispatch, self.notifier, ticket)


async def dispatched(
    turn: Turn, templates: Templates, dispatch: RepairDispatch, notifier: Notifier | None, ticket: Mapping[str, Any]
) -> Sequence[Reply]:
    """Dispatch ``ticket`` and tell the customer who comes, when, and what is late."""
    msg = turn.message
    pref = msg.sender
    detail = "standard"
    if notifier is not None:
        pref = await notifier.customer(msg.channel, msg.account, msg.sender, turn.language, conversation=msg.conversation)
        detail = await notifier.detail(pref, "repair")
    outcome = await dispatch.dispatch(ticket, pref_customer=pref)
    t = outcome.ticket
    text = templates.render(
        "repair_dispatched", turn.language, ticket=t, detail=detail, pending=list(outcome.pending),
        engineer=t.get("engineer"), alternates=t.get("alternates") or [], parts=t.get("parts") or [],
        warranty=t.get("warranty") or {},
    )
    replies = [Reply(text=text)]
    if outcome.qr_path:
        replies.append(Reply(kind=ReplyKind.IMAGE, image_path=outcome.qr_path))
    return tuple(replies)


class RepairStatusSkill(Skill):
    name = "repair_status"

    def __init__(self, templates: Templates, tickets: Tickets) -> None:
        self.templates = templates
        self.tickets = tickets

    def accepts(self, turn: Turn) -> bool:
        return turn.intent == "ask_repair_status"

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        ticket = await self.tickets.latest(turn.state.customer)
        if ticket is None:
            return (Reply(text=self.templates.render("repair_status_none", turn.language)),)
        return (Reply(text=self.templates.render("repair_status", turn.language, ticket=ticket)),)
