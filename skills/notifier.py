"""The skills' door to the notification engine: every proactive message goes through it.

Built by the composition root with the engine. Without one (a command-line import that
runs no gateway) it records nothing and says so, instead of sending around the engine.
With the customers' own rules (:mod:`preferences.rules`), a notification that matches a
rule of its customer also goes, as a copy, to the address the rule names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from bot.logs import ref
from bot.store import channel_identity
from preferences.engine import Decision, NotificationEngine
from preferences.errors import UnknownCustomer
from preferences.model import Notification, Topic
from preferences.rules import CustomerRules
from preferences.store import ChatAddress, NewCustomer

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, engine: NotificationEngine | None, rules: CustomerRules | None = None) -> None:
        self.engine = engine
        self.rules = rules

    async def customer(self, channel: str, account: str, sender: str, language: str = "zh", *, conversation: str = "") -> str:
        """The preference store's id of a chat customer, created on first contact so that
        proactive messages can reach them."""
        address = ChatAddress(channel, account, sender, conversation, language)
        return (await self.customers([address]))[address.key]

    async def customers(self, addresses: Sequence[ChatAddress]) -> dict[tuple[str, str, str], str]:
        """:meth:`customer` for many chat addresses, by (channel, account, sender)."""
        if self.engine is None:
            return {a.key: channel_identity(a.channel, a.account, a.sender) for a in addresses}
        return await self.engine.prefs.customers_for(addresses, actor="system", via="system")

    async def contact(self, email: str, language: str = "zh") -> str:
        """A preference customer for a company contact reached by email (a CTO, a buyer)."""
        return (await self.contacts({email: language}))[email]

    async def contacts(self, emails: Mapping[str, str]) -> dict[str, str]:
        """:meth:`contact` for many addresses (email -> language), created with one batch."""
        ids = {email: f"contact:{email.lower()}" for email in emails}
        if self.engine is not None:
            await self.engine.prefs.create_many([
                NewCustomer(ids[e], {"addresses": {"email": {"address": e}}, "channels": ["email"], "language": lang}, "system")
                for e, lang in emails.items()
            ], via="system")
        return ids

    async def detail(self, customer: str, topic: str) -> str:
        """The customer's detail level for ``topic`` (brief, standard, full)."""
        if self.engine is None:
            return "standard"
        try:
            prefs = await self.engine.prefs.effective(customer)
        except UnknownCustomer:
            return "standard"
        return prefs.topics[Topic(topic)].detail.value

    async def language(self, customer: str, default: str = "zh") -> str:
        if self.engine is None:
            return default
        try:
            return (await self.engine.prefs.effective(customer)).language
        except UnknownCustomer:
            return default

    async def notify(self, notification: Notification) -> Decision | None:
        """One notification: :meth:`notify_many` with a batch of one; its error is raised."""
        result = (await self.notify_many([notification]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def notify_many(self, notifications: Sequence[Notification]) -> list[Decision | Exception | None]:
        """The engine's ``notify_many`` (one entry per notification: its decision, or the
        error that stopped it alone; None without an engine), then the copies the
        customers' own rules ask for, as one more batch."""
        if self.engine is None:
            for n in notifications:
                log.warning("notification %s not sent: no notification engine in this process", ref(n.key or ""))
            return [None] * len(notifications)
        results: list[Decision | Exception | None] = list(await self.engine.notify_many(notifications))
        if self.rules is None:
            return results
        asked = [(i, n) for i, n in enumerate(notifications) if isinstance(results[i], Decision) and not n.customer.startswith("contact:")]
        rules = await self.rules.matching_many([(n.customer, n.topic.value, n.data) for _i, n in asked])
        copies: list[Notification] = []
        for (i, n), matched in zip(asked, rules):
            decision = results[i]
            assert isinstance(decision, Decision)
            for rule in matched:
                copy_to = await self.contact(rule.email, await self.language(n.customer))
                copies.append(Notification(copy_to, n.topic, n.importance, n.data, key=f"rule:{rule.id}:{decision.notification_id}", template=n.template))
        for copy, outcome in zip(copies, await self.engine.notify_many(copies)):
            if isinstance(outcome, Exception):  # the customer's own notice went out; the copy is logged
                log.warning("rule copy %s not sent: %s", ref(copy.key or ""), type(outcome).__name__)
        return results
