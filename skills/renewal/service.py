"""``Renewals``: the renewal skill's services as the composition root builds them and the
API, the chat skill and the console receive them. Each concern lives in its own module
(``rule_store``, ``contracts``, ``deals``, ``scan``); this object composes them and
offers their operations in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.mongo import Document
from preferences.clock import Clock, SystemClock
from skills.connectors.registry import Connectors
from skills.notifier import Notifier
from skills.renewal.contracts import ContractBook
from skills.renewal.deals import Deals
from skills.renewal.rule_store import RuleStore
from skills.renewal.scan import ReminderScan, ScanReport
from skills.renewal.settings import RenewalSettings

__all__ = ["RenewalSettings", "Renewals", "ScanReport"]


class Renewals:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        redis: Redis,
        notifier: Notifier,
        connectors: Connectors,
        *,
        settings: RenewalSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings or RenewalSettings()
        now = clock or SystemClock()
        self.rule_store = RuleStore(db, now)
        self.book = ContractBook(db, self.rule_store, self.settings, now)
        self.deals = Deals(db, self.book, connectors, now)
        self.scanner = ReminderScan(db, redis, notifier, self.rule_store, self.book, self.deals, self.settings, now)
        self._clock = now

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        """One clock for every part (tests move time for the whole skill at once)."""
        self._clock = clock
        for part in (self.rule_store, self.book, self.deals, self.scanner):
            part.clock = clock

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        await self.scanner.ensure_indexes()
        await self.deals.ensure_indexes()

    # -- rules
    async def list_rules(self) -> list[Document]:
        return await self.rule_store.list_rules()

    async def put_rule(self, rule_id: str, data: Mapping[str, Any], *, actor: str = "api") -> Document:
        return await self.rule_store.put_rule(rule_id, data, actor=actor)

    async def get_rule(self, rule_id: str) -> Document | None:
        return await self.rule_store.get_rule(rule_id)

    async def rule_version(self, rule_id: str, version: int) -> Document | None:
        return await self.rule_store.rule_version(rule_id, version)

    async def rule_history(self, rule_id: str) -> list[Document]:
        return await self.rule_store.rule_history(rule_id)

    async def rule_hits(self, rule: Mapping[str, Any], limit: int = 500) -> list[Document]:
        return await self.book.rule_hits(rule, limit)

    async def reminders_due(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return await self.book.reminders_due(start, end)

    async def delete_rule(self, rule_id: str) -> bool:
        return await self.rule_store.delete_rule(rule_id)

    # -- the scan
    async def scan(self) -> ScanReport:
        return await self.scanner.scan()

    async def run_daily(self) -> ScanReport | None:
        return await self.scanner.run_daily()

    async def _pref_customer(self, customer: Mapping[str, Any] | None) -> str | None:
        return await self.scanner._pref_customer(customer)

    # -- contracts, quotes and opportunities
    def facts(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None, offset: int | None = None) -> Document:
        return self.book.facts(contract, customer, offset)

    def quote(self, contract: Mapping[str, Any]) -> Document:
        return self.book.quote(contract)

    async def contracts_of(self, identity: str) -> tuple[Document | None, list[Document]]:
        return await self.book.contracts_of(identity)

    async def find_by_reference(self, *, contract_no: str = "", phone: str = "") -> str | None:
        return await self.book.find_by_reference(contract_no=contract_no, phone=phone)

    async def portfolio(self, pref_customer: str, identities: Sequence[str]) -> tuple[list[Document], list[Document]]:
        """The contracts of the CRM customers behind a preference customer (by its id or any
        of its chat identities), soonest end first, and their renewal requests."""
        owners = await self.book.owners_of(pref_customer, identities)
        if not owners:
            return [], []
        return await self.book.of_owners(owners), await self.deals.requests_of(owners)

    async def needs_review(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        return await self.book.needs_review(contract, customer)

    async def open_opportunity(self, contract: Document, *, via: str, conversation: str) -> tuple[Document, bool]:
        return await self.deals.open_opportunity(contract, via=via, conversation=conversation)

    async def opportunities_in(self, conversation: str) -> list[Document]:
        return await self.deals.of_conversation(conversation)

    async def sales_todo(self, contract: Mapping[str, Any], why: str) -> str | None:
        return await self.deals.sales_todo(contract, why)
