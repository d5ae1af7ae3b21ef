"""Complaints made in chat get the remedy a marketplace review gets.

``complain_logistics``: the order is looked up and matched against the carrier's SLA by
the review-remediation service; a breach is apologised for with the breach stated, a
coupon and a record on the carrier board, and a person is offered. Without an order
number the bot asks for it (and takes the next message that carries one); an order that
is not this customer's is "not found"; one still within the promise gets its due date.

``complain_product``: an apology, a complaint case with the product and the problem,
and the conversation queued for a person with the case attached.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.conversation.handoff import Handoff
from bot.conversation.handoff_reasons import HandoffCode
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from preferences.render import local_time
from skills.repair_dispatch.catalog import Catalog
from skills.repair_dispatch.models import resolve_model
from skills.review_remediation.detect import order_id_in
from skills.review_remediation.service import Reviews

PRODUCT_COMPLAINT = HandoffCode("product_complaint", "product complaint, case {case}")


class LogisticsComplaintSkill(Skill):
    name = "complain_logistics"

    def __init__(self, templates: Templates, reviews: Reviews, *, timezone: str) -> None:
        self.templates = templates
        self.reviews = reviews
        self.timezone = timezone

    def accepts(self, turn: Turn) -> bool:
        if turn.intent == "complain_logistics":
            return True
        awaiting = turn.state is not None and turn.state.awaiting == self.name  # we asked for the order number
        return awaiting and bool(order_id_in(turn.text))

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        state, lang = turn.state, turn.language
        order_id = turn.entity("order_id") or ""
        remedy = await self.reviews.remedy_chat(
            text=turn.text, order_id=order_id, identity=state.customer, conversation=state.conversation, language=lang
        )
        if remedy.status == "need_order":
            state.awaiting = self.name
            return (Reply(text=self.templates.render("complaint_ask_order", lang)),)
        state.awaiting = ""
        if remedy.status == "unknown_order":
            state.awaiting = self.name
            return (Reply(text=self.templates.render("complaint_order_unknown", lang, order_id=remedy.order_id)),)
        if remedy.status == "not_due":
            due = local_time(remedy.due_at, self.timezone, "%Y-%m-%d")
            return (Reply(text=self.templates.render("complaint_not_due", lang, order_id=remedy.order_id, facts=remedy.facts, due=due)),)
        text = self.templates.render(
            "complaint_logistics_remedied", lang, order_id=remedy.order_id, facts=remedy.facts, coupon=remedy.coupon
        )
        return (Reply(text=text),)


class ComplaintCases:
    """Owns ``complaint_cases``: what a customer complained about, for the agent who takes it."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.cases = db["complaint_cases"]

    async def ensure_indexes(self) -> None:
        await self.cases.create_indexes([IndexModel([("conversation", ASCENDING), ("status", ASCENDING)])])

    async def open(self, *, conversation: str, customer: str, product: str, problem: str, intent: str) -> str:
        case_id = f"CASE-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:6].upper()}"
        await self.cases.insert_one(
            {"_id": case_id, "conversation": conversation, "customer": customer, "product": product, "problem": problem,
             "intent": intent, "status": "open", "opened_at": time.time()}
        )
        return case_id

    async def of_conversation(self, conversation: str) -> list[dict[str, Any]]:
        return [c async for c in self.cases.find({"conversation": conversation}).sort("opened_at", ASCENDING)]

    async def of_customer(self, customer: str) -> list[dict[str, Any]]:
        return [c async for c in self.cases.find({"customer": customer}).sort("opened_at", ASCENDING)]


class ProductComplaintSkill(Skill):
    """Apologise, open a case with the product and the problem, queue it for a person."""

    name = "complain_product"

    def __init__(self, templates: Templates, cases: ComplaintCases, handoff: Handoff, catalog: Catalog) -> None:
        self.templates = templates
        self.cases = cases
        self.handoff = handoff
        self.catalog = catalog

    def accepts(self, turn: Turn) -> bool:
        return turn.intent == "complain_product"

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        state = turn.state
        named = resolve_model(turn.entity("device_model"), turn.text, await self.catalog.known_models())
        product = named or await self._only_model(state.customer)
        case_id = await self.cases.open(
            conversation=state.conversation, customer=state.customer, product=product, problem=turn.text, intent=turn.intent
        )
        await self.handoff.to_queue(state, PRODUCT_COMPLAINT(case=case_id))
        return (Reply(text=self.templates.render("complaint_case_opened", turn.language, case_id=case_id, product=product)),)

    async def _only_model(self, identity: str) -> str:
        """The customer's device model when they have exactly one device, else ``""``."""
        crm = await self.catalog.customer_of(identity)
        device = await self.catalog.device(str(crm["_id"]), None) if crm else None
        return str(device["model"]) if device else ""
