"""The renewal scan, renewal quotes and opportunities.

Exactly once across workers and restarts, for each (contract, offset):

* a Redis lock lets one worker scan at a time (the lock only saves work: correctness
  does not depend on it);
* before anything is sent, a record ``renewal_reminders`` ``{_id: "<contract>:<offset>"}``
  is inserted; ``_id`` is unique, so a second scan (or a second worker that slipped past
  an expired lock) gets DuplicateKeyError and sends nothing;
* the notification engine's key ``renewal:<contract>:<offset>`` makes a resend after a
  crash between insert and send a no-op, and records left ``pending`` by a crash are
  finished by the next scan.

The contract is also marked (``reminded: [60, 30]``) so the next scan's query skips it
without looking up reminder records one by one (``$in`` is slow on the embedded store).
Only the tightest offset that applies is sent: a contract created 20 days before its end
gets the 30-day reminder, not a late 60-day one as well.

Contracts go in batches, and a batch costs a fixed handful of round trips besides its
notifications: one insert of the records, customers read 20 per ``$in``, each customer and
contact resolved once per scan before the sends, then one bulk write for the contracts
(marks and legal-review flags) and one for the records' outcome. The records are written
last, so a crash before that leaves them pending, which is the case the next scan handles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.asyncio import Redis

from bot.mongo import IN_CHUNK, Document, find_by_ids
from preferences.clock import Clock, SystemClock
from preferences.model import Importance, Notification, Topic
from skills.connectors.base import ConnectorError
from skills.connectors.registry import Connectors
from skills.connectors.todo import TodoConnector
from skills.notifier import Notifier
from skills.renewal.rules import matching_actions, validate_rule

log = logging.getLogger(__name__)

DAY = 86_400.0
_LOCK = "kefu:renewal:scan-lock"


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    """``renewal:`` in kefu.yml."""

    offsets: tuple[int, ...] = (60, 30, 7)
    uplift: float = 0.03  # list-price increase quoted for the next term
    term_months: int = 12
    batch: int = 500
    concurrency: int = 32
    lock_ms: int = 10 * 60_000
    timezone: str = "Asia/Shanghai"
    run_at: str = "09:00"  # local time of the daily scan

    @classmethod
    def from_section(cls, s: Mapping[str, Any]) -> RenewalSettings:
        d = cls()
        offsets = tuple(sorted({int(x) for x in s.get("offsets", d.offsets)}, reverse=True))
        return cls(
            offsets=offsets, uplift=float(s.get("uplift", d.uplift)), term_months=int(s.get("term_months", d.term_months)),
            batch=int(s.get("batch", d.batch)), concurrency=int(s.get("concurrency", d.concurrency)),
            lock_ms=int(s.get("lock_ms", d.lock_ms)), timezone=str(s.get("timezone", d.timezone)),
            run_at=str(s.get("run_at", d.run_at)),
        )


@dataclass
class ScanReport:
    scanned: int = 0
    sent: int = 0
    skipped: int = 0  # already reminded (another worker, an earlier run)
    failed: int = 0
    actions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Plan:
    """One claimed reminder with what the batch read for it, ready to send."""

    contract: Document
    offset: int
    customer: Document | None
    facts: Document
    actions: list[dict[str, Any]]


@dataclass(slots=True)
class _Outcome:
    """What one sent reminder did; written by _record with the rest of its batch."""

    rid: str
    contract: Any
    offset: int
    customer: str | None
    decision: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    legal_review: Document | None = None


def _contact_email(customer: Mapping[str, Any] | None, action: Mapping[str, Any]) -> str | None:
    """The address a ``notify_contact`` action goes to (the customer's contact in its role)."""
    if action.get("action") != "notify_contact":
        return None
    role = str(action.get("role", "")).lower()
    contact = next((c for c in (customer or {}).get("contacts", []) if str(c.get("role", "")).lower() == role), None)
    return str(contact["email"]) if contact is not None and contact.get("email") else None


def _language(customer: Mapping[str, Any] | None) -> str:
    return str((customer or {}).get("language", "zh"))


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
        self.contracts = db["contracts"]
        self.customers = db["crm_customers"]
        self.reminders = db["renewal_reminders"]
        self.rules = db["renewal_rules"]
        self.opportunities = db["renewal_opportunities"]
        self.runs = db["renewal_runs"]
        self.redis = redis
        self.notifier = notifier
        self.connectors = connectors
        self.settings = settings or RenewalSettings()
        self.clock = clock or SystemClock()
        # CRM customer / contact email -> preference customer, for one scan: a customer
        # with ten contracts is looked up (or created) once, not ten times.
        self._people: dict[str, str | None] = {}

    async def ensure_indexes(self) -> None:
        await self.contracts.create_indexes([IndexModel([("end", ASCENDING)]), IndexModel([("customer", ASCENDING), ("end", ASCENDING)])])
        await self.reminders.create_indexes([IndexModel([("status", ASCENDING), ("at", ASCENDING)])])
        await self.opportunities.create_indexes([IndexModel([("owner", ASCENDING), ("created_at", ASCENDING)])])

    # -- rules ---------------------------------------------------------------------------
    async def list_rules(self) -> list[Document]:
        return [r async for r in self.rules.find({}).sort("_id", ASCENDING)]

    async def put_rule(self, rule_id: str, data: Mapping[str, Any]) -> Document:
        clean = validate_rule(data)
        clean["updated_at"] = self.clock.now()
        await self.rules.update_one({"_id": rule_id}, {"$set": clean, "$inc": {"version": 1}}, upsert=True)
        stored = await self.rules.find_one({"_id": rule_id})
        assert stored is not None
        return stored

    async def delete_rule(self, rule_id: str) -> bool:
        return (await self.rules.delete_one({"_id": rule_id})).deleted_count == 1

    # -- facts -----------------------------------------------------------------------------
    def facts(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None, offset: int | None = None) -> Document:
        now = self.clock.now()
        return {
            **contract,
            "customer": dict(customer or {}),
            "days_left": int((float(contract.get("end", now)) - now) // DAY),
            "offset": offset,
            "past_contracts": int(contract.get("past_contracts", 0)),
        }

    # -- the schedule --------------------------------------------------------------------------
    async def run_daily(self) -> ScanReport | None:
        """Run today's scan once, after ``run_at`` local time; called every minute or so by
        every worker. ``renewal_runs`` ``{_id: "<local date>"}`` makes it once a day across
        workers and restarts; a run that died half-way is taken over after ``lock_ms``."""
        from preferences.model import zone

        local = dt.datetime.fromtimestamp(self.clock.now(), zone(self.settings.timezone))
        hh, mm = (int(x) for x in self.settings.run_at.split(":"))
        if (local.hour, local.minute) < (hh, mm):
            return None
        day = local.date().isoformat()
        now = self.clock.now()
        try:
            await self.runs.insert_one({"_id": day, "status": "running", "started_at": now})
        except DuplicateKeyError:
            taken = await self.runs.find_one_and_update(
                {"_id": day, "status": "running", "started_at": {"$lt": now - self.settings.lock_ms / 1000}},
                {"$set": {"started_at": now}},
            )
            if taken is None:
                return None
        report = await self.scan()
        await self.runs.update_one({"_id": day}, {"$set": {"status": "done", "done_at": self.clock.now(), "report": report.__dict__}})
        return report

    # -- the scan ----------------------------------------------------------------------------
    async def scan(self) -> ScanReport:
        """Send every reminder that is due now; safe to run from any number of workers."""
        report = ScanReport()
        token = f"{time.time()}"
        if not await self.redis.set(_LOCK, token, nx=True, px=self.settings.lock_ms):
            return report
        self._people = {}
        try:
            rules = [r for r in await self.list_rules() if r.get("enabled", True)]
            await self._finish_pending(rules, report)
            now = self.clock.now()
            offsets = self.settings.offsets
            for i, offset in enumerate(offsets):
                lower = offsets[i + 1] if i + 1 < len(offsets) else 0
                query = {"end": {"$gt": now + lower * DAY, "$lte": now + offset * DAY}, "reminded": {"$ne": offset}}
                batch: list[Document] = []
                async for contract in self.contracts.find(query).sort("end", ASCENDING):
                    batch.append(contract)
                    if len(batch) >= self.settings.batch:
                        await self._send_batch(batch, offset, rules, report)
                        batch = []
                if batch:
                    await self._send_batch(batch, offset, rules, report)
        finally:
            # Only our own lock: a scan slower than lock_ms must not free a successor's.
            if await self.redis.get(_LOCK) == token.encode():
                await self.redis.delete(_LOCK)
        return report

    async def _send_batch(self, contracts: Sequence[Document], offset: int, rules: Sequence[Document], report: ScanReport) -> None:
        report.scanned += len(contracts)
        now = self.clock.now()
        records = [{"_id": f"{c['_id']}:{offset}", "contract": c["_id"], "offset": offset, "status": "pending", "at": now} for c in contracts]
        claimed: set[str] = {str(c["_id"]) for c in contracts}
        try:
            await self.reminders.insert_many(records, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                if err.get("code") == 11000:
                    claimed.discard(str(records[err["index"]]["contract"]))
                else:
                    raise
        report.skipped += len(contracts) - len(claimed)
        mine = [c for c in contracts if str(c["_id"]) in claimed]
        outcomes = await self._deliver([(c, offset) for c in mine], rules, report)
        # The whole batch is marked: also contracts another scan had claimed, and those whose
        # reminder failed (its record stays pending and _finish_pending sends it).
        await self._record(outcomes, [(c["_id"], offset) for c in contracts])

    async def _finish_pending(self, rules: Sequence[Document], report: ScanReport) -> None:
        """Send what an earlier scan claimed but did not finish (a crash, a failed send): its
        record blocks every other send, and the notification keys make whatever did go out
        a no-op. Read in batches like the scan, not one contract and customer at a time."""
        stale = self.clock.now() - 60
        cursor = self.reminders.find({"status": "pending", "at": {"$lt": stale}}, projection={"contract": 1, "offset": 1})
        pending = [r async for r in cursor]
        for start in range(0, len(pending), self.settings.batch):
            chunk = pending[start : start + self.settings.batch]
            contracts = await find_by_ids(self.contracts, {r["contract"] for r in chunk})
            # A record whose contract is gone stays pending: there is nothing to send.
            items = [(contracts[r["contract"]], int(r["offset"])) for r in chunk if r["contract"] in contracts]
            await self._record(await self._deliver(items, rules, report), [])

    async def _deliver(self, items: Sequence[tuple[Document, int]], rules: Sequence[Document], report: ScanReport) -> list[_Outcome]:
        """Send claimed reminders; returns what each successful one did, for _record. Reads
        and preference lookups are done for the whole batch first, so that each reminder
        costs only its notifications (and rule actions that call outside systems)."""
        customers = await find_by_ids(self.customers, {c["customer"] for c, _ in items if c.get("customer") is not None})
        plans: list[_Plan] = []
        for contract, offset in items:
            customer = customers.get(contract.get("customer"))
            facts = self.facts(contract, customer, offset)
            plans.append(_Plan(contract, offset, customer, facts, matching_actions(rules, facts)))
        await self._resolve_people(plans)
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def one(plan: _Plan) -> _Outcome | None:
            async with sem:
                try:
                    outcome = await self._remind(plan, report)
                except Exception:
                    report.failed += 1  # left pending: the next scan finishes it
                    log.exception("renewal reminder %s:%s failed", plan.contract["_id"], plan.offset)
                    return None
                report.sent += 1
                return outcome

        return [o for o in await asyncio.gather(*(one(p) for p in plans)) if o is not None]

    async def _resolve_people(self, plans: Sequence[_Plan]) -> None:
        # Each CRM customer and contact of the batch once, before the sends: concurrent sends
        # for one customer's contracts would otherwise each miss the cache, look it up and
        # try to create it. A failed lookup is not cached; the reminder retries it and fails.
        customers: dict[Any, Mapping[str, Any]] = {}
        contacts: dict[str, str] = {}
        for plan in plans:
            if plan.customer and f"crm:{plan.customer['_id']}" not in self._people:
                customers.setdefault(plan.customer["_id"], plan.customer)
            for action in plan.actions:
                email = _contact_email(plan.customer, action)
                if email and f"contact:{email}" not in self._people:
                    contacts.setdefault(email, _language(plan.customer))
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def bounded(lookup: Awaitable[str | None]) -> str | None:
            async with sem:
                return await lookup

        await asyncio.gather(
            *(bounded(self._pref_customer(c)) for c in customers.values()),
            *(bounded(self._pref_contact(e, lang)) for e, lang in contacts.items()),
            return_exceptions=True,
        )

    async def _record(self, outcomes: Sequence[_Outcome], marks: Sequence[tuple[Any, int]]) -> None:
        """One bulk write for the contracts (``reminded`` marks, legal-review flags) and one
        for the reminder records, instead of a write or two per reminder. Contracts first: a
        record that says ``sent`` then implies its flag is stored; a crash in between leaves
        the record pending and the next scan redoes it (its notifications are keyed)."""
        flags = {o.rid: (o.contract, o.legal_review) for o in outcomes if o.legal_review is not None}
        ops: list[UpdateOne | UpdateMany] = []
        plain: dict[int, list[Any]] = {}
        for contract, offset in marks:
            flagged = flags.pop(f"{contract}:{offset}", None)
            if flagged is None:
                plain.setdefault(offset, []).append(contract)
            else:
                ops.append(UpdateOne({"_id": contract}, {"$addToSet": {"reminded": offset}, "$set": {"legal_review": flagged[1]}}))
        ops += [UpdateOne({"_id": contract}, {"$set": {"legal_review": flag}}) for contract, flag in flags.values()]
        # Marks that are alike go as update_many over a chunk of ids: the store charges ~1 ms
        # per updated document either way, but a little less without an operation per document.
        ops += [
            UpdateMany({"_id": {"$in": ids[i : i + IN_CHUNK]}}, {"$addToSet": {"reminded": offset}})
            for offset, ids in plain.items()
            for i in range(0, len(ids), IN_CHUNK)
        ]
        if ops:
            await self.contracts.bulk_write(ops, ordered=False)
        if not outcomes:
            return
        now = self.clock.now()
        sent = [
            UpdateOne({"_id": o.rid}, {"$set": {"status": "sent", "sent_at": now, "customer": o.customer, "decision": o.decision, "actions": o.actions}})
            for o in outcomes
        ]
        try:
            await self.reminders.bulk_write(sent, ordered=False)
        except BulkWriteError as exc:
            # Those records stay pending: the next scan resends them, as no-ops where they went out.
            log.error("renewal: %d reminder records not marked sent: %s", len(exc.details.get("writeErrors", [])), exc.details.get("writeErrors", [])[:3])

    async def _remind(self, plan: _Plan, report: ScanReport) -> _Outcome:
        contract = plan.contract
        rid = f"{contract['_id']}:{plan.offset}"
        data = self._data(contract, plan.facts)
        target = await self._pref_customer(plan.customer)
        decision = None
        if target is not None:
            decision = await self.notifier.notify(Notification(target, Topic.RENEWAL, Importance.NORMAL, data, key=f"renewal:{rid}"))
        outcome = _Outcome(rid, contract["_id"], plan.offset, target, decision.action.value if decision else "no_customer")
        for action in plan.actions:
            report.actions[action["action"]] = report.actions.get(action["action"], 0) + 1
            outcome.actions.append(await self._act(action, plan, data, outcome))
        return outcome

    def _data(self, contract: Mapping[str, Any], facts: Mapping[str, Any]) -> Document:
        from preferences.render import local_time

        return {
            "contract_id": contract["_id"], "product": contract.get("product", ""),
            "expires": local_time(float(contract.get("end", 0)), self.settings.timezone, "%Y-%m-%d"),
            "amount": f"{contract.get('currency', 'CNY')} {self.quote(contract)['amount']:,.0f}",
            "days_left": facts["days_left"],
        }

    async def _pref_customer(self, customer: Mapping[str, Any] | None) -> str | None:
        if not customer:
            return None
        key = f"crm:{customer['_id']}"
        if key not in self._people:
            self._people[key] = await self._find_pref_customer(customer)
        return self._people[key]

    async def _find_pref_customer(self, customer: Mapping[str, Any]) -> str | None:
        if customer.get("pref_customer"):
            return str(customer["pref_customer"])
        for identity in customer.get("identities") or ():
            channel, _, rest = str(identity).partition(":")
            account, _, sender = rest.partition(":")
            if channel and account and sender:
                return await self.notifier.customer(channel, account, sender, str(customer.get("language", "zh")))
        return None

    async def _pref_contact(self, email: str, language: str) -> str:
        key = f"contact:{email}"
        cid = self._people.get(key)
        if cid is None:
            cid = self._people[key] = await self.notifier.contact(email, language)
        return cid

    async def _act(self, action: Mapping[str, Any], plan: _Plan, data: Mapping[str, Any], outcome: _Outcome) -> dict[str, Any]:
        kind = str(action["action"])
        contract = plan.contract
        if kind == "notify_contact":
            role = str(action.get("role", ""))
            email = _contact_email(plan.customer, action)
            if email is None:
                return {"action": kind, "rule": action.get("rule"), "result": "no_contact"}
            cid = await self._pref_contact(email, _language(plan.customer))
            d = await self.notifier.notify(
                Notification(cid, Topic.RENEWAL, Importance.NORMAL, data, key=f"renewal:{outcome.rid}:{role}")
            )
            return {"action": kind, "rule": action.get("rule"), "result": d.action.value if d else "no_engine", "to": email}
        if kind == "legal_review":
            # Stored with the batch's contract marks (see _record), not a write of its own.
            outcome.legal_review = {"required": True, "rule": action.get("rule"), "at": self.clock.now()}
            return {"action": kind, "rule": action.get("rule"), "result": "flagged"}
        if kind == "sales_todo":
            task = await self.sales_todo(contract, "reminder")
            return {"action": kind, "rule": action.get("rule"), "result": task or "failed"}
        return {"action": kind, "rule": action.get("rule"), "result": "noted"}

    # -- quotes and opportunities --------------------------------------------------------------
    def quote(self, contract: Mapping[str, Any]) -> Document:
        amount = round(float(contract.get("amount", 0)) * (1 + self.settings.uplift), -2)
        start = float(contract.get("end", self.clock.now()))
        return {"amount": amount, "currency": contract.get("currency", "CNY"), "start": start, "months": self.settings.term_months}

    async def contracts_of(self, identity: str) -> tuple[Document | None, list[Document]]:
        """The CRM customer behind a chat identity and their contracts, soonest end first."""
        customer = await self.customers.find_one({"identities": identity})
        if customer is None:
            return None, []
        cursor = self.contracts.find({"customer": customer["_id"], "end": {"$gt": self.clock.now()}}).sort("end", ASCENDING).limit(10)
        return customer, [c async for c in cursor]

    async def portfolio(self, pref_customer: str, identities: Sequence[str]) -> tuple[list[Document], list[Document]]:
        """The contracts of the CRM customers behind a preference customer (by its id or any
        of its chat identities), soonest end first, and their renewal requests."""
        owners = [c["_id"] async for c in self.customers.find(
            {"$or": [{"pref_customer": pref_customer}, {"identities": {"$in": list(identities)}}]}, {"_id": 1}
        ).limit(20)]
        if not owners:
            return [], []
        contracts = [c async for c in self.contracts.find({"customer": {"$in": owners}}).sort("end", ASCENDING).limit(200)]
        requests = [o async for o in self.opportunities.find({"customer": {"$in": owners}}).sort("created_at", -1).limit(200)]
        return contracts, requests

    async def needs_review(self, contract: Mapping[str, Any], customer: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Rule actions that stop the bot quoting (legal review, hand-off), evaluated now."""
        rules = [r for r in await self.list_rules() if r.get("enabled", True)]
        stored = [{"action": "legal_review", "rule": contract["legal_review"].get("rule")}] if (contract.get("legal_review") or {}).get("required") else []
        now = [a for a in matching_actions(rules, self.facts(contract, customer)) if a["action"] in ("legal_review", "handoff")]
        return stored + [a for a in now if a not in stored]

    async def open_opportunity(self, contract: Document, *, via: str, conversation: str) -> tuple[Document, bool]:
        """One opportunity per contract term (idempotent), with a to-do for the sales owner."""
        oid = f"{contract['_id']}:{int(float(contract.get('end', 0)))}"
        q = self.quote(contract)
        doc = {"_id": oid, "contract": contract["_id"], "customer": contract.get("customer"), "owner": (contract.get("sales_owner") or {}).get("name", ""),
               "quote": q, "status": "open", "via": via, "conversation": conversation, "created_at": self.clock.now()}
        try:
            await self.opportunities.insert_one(doc)
            created = True
        except DuplicateKeyError:
            created = False
        if created:
            task = await self.sales_todo(contract, "opportunity")
            await self.opportunities.update_one({"_id": oid}, {"$set": {"todo": task, "todo_failed": task is None}})
        stored = await self.opportunities.find_one({"_id": oid})
        assert stored is not None
        return stored, created

    async def sales_todo(self, contract: Mapping[str, Any], why: str) -> str | None:
        found = self.connectors.items.get("dingtalk_todo")
        todo = found if isinstance(found, TodoConnector) else None
        owner = contract.get("sales_owner") or {}
        if todo is None or not owner.get("union_id"):
            return None
        q = self.quote(contract)
        try:
            return await todo.create_task(
                executors=[str(owner["union_id"])], subject=f"续约 {contract['_id']} {contract.get('product', '')}",
                description=f"{why}: {q['currency']} {q['amount']:,.0f} / {q['months']} 个月", source_id=f"renewal:{contract['_id']}:{why}",
                due_ts=float(contract.get("end", 0)) or None,
            )
        except ConnectorError as exc:
            log.warning("renewal to-do for %s failed: %s", contract["_id"], exc)
            return None
