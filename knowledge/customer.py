"""What retrieval may know about the customer asking: the products they own and how
much detail they want.

The knowledge skill reads these through :class:`CustomerFacts`; the composition root
hands in the implementation, which reads the CRM's devices and the customer's
preferences through their owners.
"""

from __future__ import annotations

from typing import Protocol

from bot.messages import InboundMessage
from bot.store import channel_identity
from preferences.model import Topic
from preferences.store import PreferenceStore
from skills.repair_dispatch.catalog import Catalog


class CustomerFacts(Protocol):
    async def products(self, message: InboundMessage) -> frozenset[str]:
        """Model numbers of the customer's devices."""

    async def detail(self, message: InboundMessage) -> str:
        """brief, standard or full: how much the customer wants to read."""


class NoFacts:
    """For tests and deployments without a CRM or preferences: nothing is known."""

    async def products(self, message: InboundMessage) -> frozenset[str]:
        return frozenset()

    async def detail(self, message: InboundMessage) -> str:
        return "standard"


class CrmCustomerFacts:
    """Products from the CRM's devices, detail from the customer's preferences.

    Detail is the customer's choice for service messages (the ``repair`` topic, which
    "answer me briefly" sets along with every other topic).
    """

    def __init__(self, catalog: Catalog, prefs: PreferenceStore) -> None:
        self.catalog = catalog
        self.prefs = prefs

    async def products(self, message: InboundMessage) -> frozenset[str]:
        customer = await self.catalog.customer_of(channel_identity(message.channel, message.account, message.sender))
        return await self.catalog.models_of(str(customer["_id"])) if customer else frozenset()

    async def detail(self, message: InboundMessage) -> str:
        found = await self.prefs.find_by_address(message.channel, message.account, message.sender)
        if found is None:
            return "standard"
        return (await self.prefs.effective(found)).topics[Topic.REPAIR].detail.value
