"""The daily renewal scan: reminders, their rule actions and their records.

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

Contracts go in batches, and a batch costs a fixed handful of round trips whatever its
rules do: one insert of the records, customers read 20 per ``$in``, the people behind
them (chat customers, contacts) looked up and created in one batch, every customer's
reminder in one ``notify_many`` and every contact's notice in another, then one bulk
write for the contracts (marks and legal-review flags) and one for the records' outcome.
The records are written last, so a crash before that leaves them pending, which is the
case the next scan handles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.asyncio import Redis

from bot.mongo import IN_CHUNK, Document, find_by_ids
from preferences.clock import Clock
from bot.logs import ref
from preferences.model import Importance, Notification, Topic
from preferences.store import ChatAddress
from skills.notifier import Notifier
from skills.renewal.contracts import DAY, ContractBook
from skills.renewal.deals import Deals
from skills.renewal.rule_store import RuleStore
from skills.renewal.rules import matching_actions
from skills.renewal.settings import RenewalSettings

log = logging.getLogger(__name__)

_LOCK = "kefu:renewal:scan-lock"


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
    customer: Mapping[str, Any] | None
    facts: Document
    actions: list[dict[str, Any]]
    data: Document = field(default_factory=dict)  # the notification's template data


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


class ReminderScan:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        redis: Redis,
        notifier: Notifier,
        rules: RuleStore,
        book: ContractBook,
        deals: Deals,
        settings: RenewalSettings,
        clock: Clock,
    ) -> None:
        self.contracts = book.contracts
        self.customers = book.customers
        self.reminders = db["renewal_reminders"]
        self.runs = db["renewal_runs"]
        self.redis = redis
        self.notifier = notifier
        self.rules = rules
        self.book = book
        self.deals = deals
        self.settings = settings
        self.clock = clock
        # CRM customer / contact email -> preference customer, for one scan: a customer
        # with ten contracts is looked up (or created) once, not ten times.
        self._people: dict[str, str | None] = {}

    async def ensure_indexes(self) -> None:
        await self.reminders.create_indexes([IndexModel([("status", ASCENDING), ("at", ASCENDING)])])

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
            rules = await self.rules.enabled()
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
        """Send claimed reminders; returns what each successful one did, for _record.

        A batch costs a fixed set of store round trips whatever its rules do: the
        customers read in ``$in`` chunks, the people behind them resolved (and created)
        in one batch, every customer's reminder in one ``notify_many``, every contact's
        notice in another; legal-review flags go with the batch's marks. Only sales
        to-dos call outside, side by side with a bound. A reminder that fails (its
        notification, a contact's notice) stays pending for the next scan, alone."""
        customers = await find_by_ids(self.customers, {c["customer"] for c, _ in items if c.get("customer") is not None})
        plans: list[_Plan] = []
        for contract, offset in items:
            customer = customers.get(contract.get("customer"))
            facts = self.book.facts(contract, customer, offset)
            plans.append(_Plan(contract, offset, customer, facts, matching_actions(rules, facts)))
        await self._resolve_people(plans)
        outcomes: dict[int, _Outcome] = {}
        asked: list[tuple[int, Notification]] = []
        for k, plan in enumerate(plans):
            rid = f"{plan.contract['_id']}:{plan.offset}"
            plan.data = self._data(plan.contract, plan.facts)
            known, target = self._person(f"crm:{plan.customer['_id']}") if plan.customer else (True, None)
            if not known:
                self._fail(report, rid, "customer lookup")
                continue
            outcomes[k] = _Outcome(rid, plan.contract["_id"], plan.offset, target, "no_customer")
            if target is not None:
                asked.append((k, Notification(target, Topic.RENEWAL, Importance.NORMAL, plan.data, key=f"renewal:{rid}")))
        for (k, _n), decision in zip(asked, await self.notifier.notify_many([n for _k, n in asked])):
            if isinstance(decision, Exception):
                self._fail(report, outcomes.pop(k).rid, type(decision).__name__)
            elif decision is not None:
                outcomes[k].decision = decision.action.value
        await self._act(plans, outcomes, report)
        report.sent += len(outcomes)
        return list(outcomes.values())

    def _fail(self, report: ScanReport, rid: str, why: str) -> None:
        report.failed += 1  # left pending: the next scan finishes it
        log.warning("renewal reminder %s failed (%s); the next scan retries it", ref(rid), why)

    def _person(self, key: str) -> tuple[bool, str | None]:
        """(resolved, preference customer) for ``crm:<id>`` or ``contact:<email>``."""
        return (key in self._people, self._people.get(key))

    async def _act(self, plans: Sequence[_Plan], outcomes: dict[int, _Outcome], report: ScanReport) -> None:
        """The rule actions of the reminders that went out, batched: every contact notice
        of the batch in one ``notify_many``, legal-review flags kept for _record, sales
        to-dos concurrently. A reminder whose contact notice failed fails as a whole."""
        notices: list[tuple[int, int, Notification]] = []
        todos: list[tuple[int, int]] = []
        for k, outcome in outcomes.items():
            plan = plans[k]
            for a, action in enumerate(plan.actions):
                kind = str(action["action"])
                report.actions[kind] = report.actions.get(kind, 0) + 1
                result: dict[str, Any] = {"action": kind, "rule": action.get("rule"), "result": "noted"}
                if kind == "notify_contact":
                    email = _contact_email(plan.customer, action)
                    known, cid = self._person(f"contact:{email}") if email else (True, None)
                    if email is None:
                        result["result"] = "no_contact"
                    elif not known or cid is None:
                        result["result"] = "failed"
                    else:
                        result["to"] = email
                        key = f"renewal:{outcome.rid}:{action.get('role', '')}"
                        notices.append((k, a, Notification(cid, Topic.RENEWAL, Importance.NORMAL, plan.data, key=key)))
                elif kind == "legal_review":
                    # Stored with the batch's contract marks (see _record), not a write of its own.
                    outcome.legal_review = {"required": True, "rule": action.get("rule"), "at": self.clock.now()}
                    result["result"] = "flagged"
                elif kind == "sales_todo":
                    todos.append((k, a))
                outcome.actions.append(result)
        failed: set[int] = {k for k, o in outcomes.items() if any(r["result"] == "failed" for r in o.actions)}
        for (k, a, _n), d in zip(notices, await self.notifier.notify_many([n for _k, _a, n in notices])):
            if isinstance(d, Exception):
                failed.add(k)
            else:
                outcomes[k].actions[a]["result"] = d.action.value if d else "no_engine"
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def todo(k: int, a: int) -> None:
            async with sem:
                task = await self.deals.sales_todo(plans[k].contract, "reminder")
            outcomes[k].actions[a]["result"] = task or "failed"

        await asyncio.gather(*(todo(k, a) for k, a in todos if k not in failed))
        for k in failed:
            self._fail(report, outcomes.pop(k).rid, "contact notice")

    async def _resolve_people(self, plans: Sequence[_Plan]) -> None:
        """Each CRM customer and contact of the batch once, before the sends, in one batch
        each (looked up, and created where new). A failed lookup is not cached: its
        reminders fail and the next scan retries them."""
        crm: dict[str, Mapping[str, Any]] = {}
        contacts: dict[str, str] = {}
        for plan in plans:
            if plan.customer and f"crm:{plan.customer['_id']}" not in self._people:
                crm.setdefault(f"crm:{plan.customer['_id']}", plan.customer)
            for action in plan.actions:
                email = _contact_email(plan.customer, action)
                if email and f"contact:{email}" not in self._people:
                    contacts.setdefault(email, _language(plan.customer))
        chats: dict[str, ChatAddress] = {}
        for key, customer in crm.items():
            if customer.get("pref_customer"):
                self._people[key] = str(customer["pref_customer"])
            elif (address := _chat_address(customer)) is not None:
                chats[key] = address
            else:
                self._people[key] = None
        try:
            found = await self.notifier.customers(list(chats.values())) if chats else {}
            self._people.update({key: found[a.key] for key, a in chats.items()})
        except Exception as exc:
            log.warning("renewal: %d customers not resolved (%s)", len(chats), type(exc).__name__)
        try:
            made = await self.notifier.contacts(contacts) if contacts else {}
            self._people.update({f"contact:{email}": cid for email, cid in made.items()})
        except Exception as exc:
            log.warning("renewal: %d contacts not resolved (%s)", len(contacts), type(exc).__name__)

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
            # Codes only: a write error quotes the document, which names the customer.
            errors = exc.details.get("writeErrors", [])
            log.error("renewal: %d reminder records not marked sent (codes %s)", len(errors), sorted({e.get("code") for e in errors}))

    def _data(self, contract: Mapping[str, Any], facts: Mapping[str, Any]) -> Document:
        from preferences.render import local_time

        return {
            "contract_id": contract["_id"], "product": contract.get("product", ""),
            "expires": local_time(float(contract.get("end", 0)), self.settings.timezone, "%Y-%m-%d"),
            "amount": f"{contract.get('currency', 'CNY')} {self.book.quote(contract)['amount']:,.0f}",
            "days_left": facts["days_left"],
        }

    async def _pref_customer(self, customer: Mapping[str, Any] | None) -> str | None:
        """The preference customer behind a CRM customer (looked up, or created)."""
        if not customer:
            return None
        key = f"crm:{customer['_id']}"
        if key not in self._people:
            await self._resolve_people([_Plan({}, 0, customer, {}, [])])
        return self._people.get(key)


def _chat_address(customer: Mapping[str, Any]) -> ChatAddress | None:
    """The first chat identity (``channel:account:sender``) on file for a CRM customer."""
    for identity in customer.get("identities") or ():
        channel, _, rest = str(identity).partition(":")
        account, _, sender = rest.partition(":")
        if channel and account and sender:
            return ChatAddress(channel, account, sender, "", _language(customer))
    return None
