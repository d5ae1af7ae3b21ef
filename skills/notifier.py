"""The skills' door to the notification engine: every proactive message goes through it.

Built by the composition root with the engine. Without one (a command-line import that
runs no gateway) it records nothing and says so, instead of sending around the engine.
With the customers' own rules (:mod:`preferences.rules`), a notification that matches a
rule of its customer also goes, as a copy, to the address the rule names.
"""

from __future__ import annotations

import logging
from bot.logs import ref
from bot.store import channel_identity
from preferences.engine import Decision, NotificationEngine
from preferences.errors import UnknownCustomer
from preferences.model import Notification, Topic
from preferences.rules import CustomerRules

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, engine: NotificationEngine | None, rules: CustomerRules | None = None) -> None:
        self.engine = engine
        self.rules = rules

    async def customer(self, channel: str, account: str, sender: str, language: str = "zh", *, conversation: str = "") -> str:
        """The preference store's id of a chat customer, created on first contact so that
        proactive messages can reach them."""
        if self.engine is None:
            return channel_identity(channel, account, sender)
        return await self.engine.prefs.customer_for(
            channel, account, sender, conversation=conversation, language=language, actor="system", via="system"
        )

    async def contact(self, email: str, language: str = "zh") -> str:
        """A preference customer for a company contact reached by email (a CTO, a buyer)."""
        cid = f"contact:{email.lower()}"
        if self.engine is not None:
            await self.engine.prefs.create(
                cid, settings={"addresses": {"email": {"address": email}}, "channels": ["email"], "language": language},
                actor="system", via="system",
            )
        return cid

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
        if self.engine is None:
            log.warning("notification %s not sent: no notification engine in this process", ref(notification.key or ""))
            return None
        decision = await self.engine.submit(notification)
        if self.rules is not None and not notification.customer.startswith("contact:"):
            for rule in await self.rules.matching(notification.customer, notification.topic.value, notification.data):
                copy_to = await self.contact(rule.email, await self.language(notification.customer))
                await self.engine.submit(Notification(
                    copy_to, notification.topic, notification.importance, notification.data,
                    key=f"rule:{rule.id}:{decision.notification_id}", template=notification.template,
                ))
        return decision
