"""The skills' door to the notification engine, which is built after them.

The engine lives in the preferences package's cleanup context, which runs after the
skills were built; :class:`Notifier` is bound to it once it exists and every proactive
message of the skills goes through it. Unbound (a gateway without preferences, some
tests) it records nothing and says so, instead of sending around the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.logs import ref
from bot.store import customer_id as channel_identity

if TYPE_CHECKING:
    from preferences.engine import Decision, NotificationEngine

log = logging.getLogger(__name__)

_CHANNELS = {"wechat": "openid", "wecom": "userid", "dingtalk": "staff_id", "email": "address"}


class Notifier:
    def __init__(self) -> None:
        self.engine: NotificationEngine | None = None

    def bind(self, engine: NotificationEngine) -> None:
        self.engine = engine

    async def customer(self, channel: str, account: str, sender: str, language: str = "zh") -> str:
        """The preference store's id of a chat customer, created on first contact (as the
        preference skills do) so that proactive messages can reach them."""
        cid = channel_identity(channel, account, sender)
        if self.engine is None or channel not in _CHANNELS:
            return cid
        prefs = self.engine.prefs
        found = await prefs.find_by_address(channel, account, sender)
        if found is not None:
            return found
        await prefs.create(
            cid, settings={"addresses": {channel: {"account": account, _CHANNELS[channel]: sender}}, "language": language},
            actor="system", via="system",
        )
        return cid

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
        from preferences.errors import UnknownCustomer
        from preferences.model import Topic

        try:
            prefs = await self.engine.prefs.effective(customer)
        except UnknownCustomer:
            return "standard"
        return prefs.topics[Topic(topic)].detail.value

    async def language(self, customer: str, default: str = "zh") -> str:
        if self.engine is None:
            return default
        from preferences.errors import UnknownCustomer

        try:
            return (await self.engine.prefs.effective(customer)).language
        except UnknownCustomer:
            return default

    async def notify(
        self, customer: str, topic: str, importance: str, data: Mapping[str, Any], *, key: str, template: str | None = None
    ) -> Decision | None:
        if self.engine is None:
            log.warning("notification %s for %s not sent: no notification engine in this process", ref(key), ref(customer))
            return None
        return await self.engine.notify(customer, topic, importance, data, key=key, template=template)
