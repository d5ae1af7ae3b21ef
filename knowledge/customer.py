"""What retrieval may know about the customer asking: the products they own and how
much detail they want.

The knowledge skill reads these through :class:`CustomerFacts`; the composition root
hands in the implementation, which reads the CRM's devices and the customer's
preferences through their owners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.messages import InboundMessage
from bot.store import channel_identity
from preferences.model import Topic
from preferences.store import PreferenceStore
from skills.repair_dispatch.catalog import Catalog


@dataclass(frozen=True, slots=True)
class Facts:
    products: frozenset[str] = frozenset()  # model numbers of the customer's devices
    detail: str = "standard"  # brief, standard or full (the customer's preference)


class CustomerFacts(Protocol):
    async def facts(self, message: InboundMessage) -> Facts: ...


class NoFacts:
    """For tests and deployments without a CRM or preferences: nothing is known."""

    async def facts(self, message: InboundMessage) -> Facts:
        return Facts()


class CrmCustomerFacts:
    """Products from the CRM's devices, detail from the customer's preferences.

    Detail is the customer's choice for service messages (the ``repair`` topic, which
    "answer me briefly" sets along with every other topic).
    """

    def __init__(self, catalog: Catalog, prefs: PreferenceStore) -> None:
        self.catalog = catalog
        self.prefs = prefs

    async def facts(self, message: InboundMessage) -> Facts:
        identity = channel_identity(message.channel, message.account, message.sender)
        customer = await self.catalog.customer_of(identity)
        products = await self.catalog.models_of(str(customer["_id"])) if customer else frozenset()
        detail = "standard"
        found = await self.prefs.find_by_address(message.channel, message.account, message.sender)
        if found is not None:
            detail = (await self.prefs.effective(found)).topics[Topic.REPAIR].detail.value
        return Facts(products=products, detail=detail)
