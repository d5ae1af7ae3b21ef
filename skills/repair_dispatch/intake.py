"""The repair report form and the status question.

``report_repair`` opens a form for device model, fault, address and preferred time; when
it is complete a ticket is opened in the ``tickets`` collection, with every step on its
timeline so an agent sees what the bot did. ``ask_repair_status`` answers from the
customer's latest ticket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.conversation.forms import FormSkill, Slot
from bot.conversation.state import ConversationState, FormState
from bot.routing import Reply, Skill, Turn
from bot.messages import ReplyKind
from bot.templates import Templates
from skills.notifier import Notifier
from skills.repair_dispatch.assign import RepairDispatch
from skills.repair_dispatch.tickets import Tickets


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
        self, templates: Templates, tickets: Tickets, dispatch: RepairDispatch | None = None, notifier: Notifier | None = None
    ) -> None:
        super().__init__(templates)
        self.tickets = tickets
        # Without dispatch (no connectors wired) the form only opens the ticket and an
        # agent assigns an engineer by hand.
        self.dispatch = dispatch
        self.notifier = notifier

    async def prefill(self, turn: Turn, form: FormState) -> None:
        """Known customers: their device (when they have one), address on file, and for a
        contract with an SLA "as soon as possible" instead of asking for a time."""
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
        ticket = await self.tickets.open(
            customer=state.customer, conversation=state.conversation, source_message=turn.message.key, fields=slots
        )
        if self.dispatch is None:
            return (Reply(text=self.templates.render("repair_ticket_opened", turn.language, ticket=ticket)),)
        msg = turn.message
        pref = msg.sender
        detail = "standard"
        if self.notifier is not None:
            pref = await self.notifier.customer(msg.channel, msg.account, msg.sender, turn.language, conversation=msg.conversation)
            detail = await self.notifier.detail(pref, "repair")
        outcome = await self.dispatch.dispatch(ticket, pref_customer=pref)
        t = outcome.ticket
        text = self.templates.render(
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
