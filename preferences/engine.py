"""The notification engine: every proactive message goes through ``notify``.

``notify`` reads the customer's effective preferences, asks the pure policy
(:func:`preferences.policy.decide`) what to do, records the notification in MongoDB
(``notifications``) and then sends it through the outbox, schedules it for the end of
the quiet hours, or folds it into a digest. Held messages and digests wait in the
Redis due-list (:mod:`preferences.schedule`); ``run_due`` sends them when they fall due,
from any number of workers.

Idempotency: a notification's id is derived from the customer, topic and the caller's
``key`` (or the data itself), so calling ``notify`` twice for the same event records
and sends it once. Each send's outbox key is ``pref:n:<id>:<channel>`` (a digest's
``pref:d:<id>:<channel>``): the outbox sends a key at most once, which is what makes
a digest exactly-once across workers and restarts.

Digest text: each filing renders the whole digest as it will then stand and stores it
with the item when no other filing came in between; the build sends that text when it
still matches (revision, item count, language, channel, templates), so the weekly burst
reads and queues instead of rendering every digest.

Fallback: the engine registers an outbox give-up hook. When a channel cannot deliver
(WeChat's 48 h window, a refused or dead message), the same content is rendered for the
customer's next channel and queued with that channel's key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from bot.messages import OutboundMessage
from bot.mongo import find_by_ids
from bot.outbox import Outbox
from bot.store import MessageStore
from preferences.clock import Clock, SystemClock, utc
from preferences.errors import InvalidPreference
from preferences.model import Importance, Preferences, Topic
from preferences.policy import Action, decide
from preferences.render import Renderer
from preferences.schedule import DueSchedule
from preferences.store import PREF_FIELDS, PreferenceStore

log = logging.getLogger(__name__)

Document = dict[str, Any]
KEY_PREFIX = "pref:"
_ENQUEUE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``notify`` did with one notification.

    ``action`` is ``send`` (queued in the outbox on ``channel``), ``hold`` (until
    ``deliver_at``, quiet hours), ``digest`` (folded into the digest due at
    ``deliver_at``) or ``suppress`` (not sent; ``reason`` says why). ``duplicate`` is
    true when the same notification had been notified before; the earlier decision is
    returned and nothing is sent again.
    """

    notification_id: str
    action: Action
    reason: str
    channel: str | None = None
    deliver_at: float | None = None
    duplicate: bool = False


def notification_id(customer_id: str, topic: str, key: str | None, importance: str, data: Mapping[str, Any]) -> str:
    basis = key if key is not None else json.dumps([importance, data], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{customer_id}\x1f{topic}\x1f{basis}".encode()).hexdigest()[:24]


def digest_id(customer_id: str, due_at: float) -> str:
    return hashlib.sha256(f"{customer_id}\x1f{int(due_at)}".encode()).hexdigest()[:24]


class NotificationEngine:
    """Decides, renders and queues proactive messages; runs the held and digest sends."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        redis: Redis,
        outbox: Outbox,
        prefs: PreferenceStore,
        renderer: Renderer,
        *,
        clock: Clock | None = None,
        message_store: MessageStore | None = None,
        channel_ok: Callable[[str, str], bool] | None = None,
        default_accounts: Mapping[str, str] | None = None,
        lease_s: float = 120.0,
    ) -> None:
        self.db = db
        self.redis = redis
        self.outbox = outbox
        self.prefs = prefs
        self.renderer = renderer
        self.clock = clock or SystemClock()
        self.message_store = message_store
        self.channel_ok = channel_ok
        self.default_accounts = dict(default_accounts or {})
        self.notifications = db["notifications"]
        self.digests = db["pref_digests"]
        self.batches = db["pref_digest_batches"]
        self.schedule = DueSchedule(redis, lease_s=lease_s)

    async def ensure_indexes(self) -> None:
        await self.notifications.create_indexes(
            [
                IndexModel([("customer", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("digest_id", ASCENDING)]),
                # A due batch's items in one range scan (see _send_digests).
                IndexModel([("deliver_at", ASCENDING), ("digest_id", ASCENDING)]),
                IndexModel([("status", ASCENDING)]),
            ]
        )
        await self.digests.create_indexes(
            [
                IndexModel([("customer", ASCENDING)]),
                IndexModel([("status", ASCENDING)]),
                IndexModel([("due_at", ASCENDING), ("_id", ASCENDING)]),
            ]
        )
        await self.batches.create_indexes([IndexModel([("due_at", ASCENDING)]), IndexModel([("created_at", ASCENDING)])])

    # -- notify ---------------------------------------------------------------------------
    async def notify(
        self,
        customer_id: str,
        topic: str | Topic,
        importance: str | Importance,
        data: Mapping[str, Any],
        *,
        key: str | None = None,
        template: str | None = None,
    ) -> Decision:
        """Send (or hold, digest or suppress) one proactive message as the customer wishes.

        Args:
            customer_id: the preference store's customer id.
            topic: repair, renewal, review, account or marketing.
            importance: low, normal, high or critical (see :mod:`preferences.policy`).
            data: the template's variables; for repair, ``ticket_open: false`` marks an
                update about a closed ticket (open is assumed otherwise).
            key: the caller's id of this event (e.g. ``"T-1001:status:3"``); by default the
                data itself identifies it.
            template: render this template instead of the topic's (e.g. ``export_ready``).

        Raises:
            InvalidPreference: unknown topic or importance.
            UnknownCustomer: no such customer.
        """
        topic_e = _parse(Topic, topic, "topic")
        importance_e = _parse(Importance, importance, "importance")
        nid = notification_id(customer_id, topic_e.value, key, importance_e.value, data)
        existing = await self.notifications.find_one({"_id": nid})
        if existing is not None:
            return _decision_of(existing, duplicate=True)
        taken = time.time()  # before the read: a copy is as old as the moment it was asked for
        customer = await self.prefs.get(customer_id)
        prefs = self._available(await self.prefs.effective_of(customer))
        now = self.clock.now()
        ticket_open = bool(data.get("ticket_open", True)) if topic_e is Topic.REPAIR else False
        policy = decide(prefs, topic_e, importance_e, utc(now), ticket_open=ticket_open)
        deliver_at = policy.deliver_at.timestamp() if policy.deliver_at else None
        doc: Document = {
            "_id": nid,
            "customer": customer_id,
            "topic": topic_e.value,
            "importance": importance_e.value,
            "data": dict(data),
            "template": template or topic_e.value,
            "created_at": now,
            "action": policy.action.value,
            "reason": policy.reason,
            "channels": list(policy.channels),
            "detail": policy.detail.value,
            "language": policy.language,
            "deliver_at": deliver_at,
            "period": policy.digest.value if policy.digest else None,
            "status": {Action.SEND: "sending", Action.HOLD: "held", Action.DIGEST: "digest", Action.SUPPRESS: "suppressed"}[
                policy.action
            ],
            "tried": [],
        }
        if policy.action is Action.DIGEST and deliver_at is not None:
            doc["digest_id"] = digest_id(customer_id, deliver_at)
            # Filed into the digest record before the notification is recorded: a crash in
            # between leaves an item the digest will carry (and a retried notify() files the
            # same item again, keyed by id), never a recorded item the digest misses. The
            # item is rendered now for the channel it will most likely go out on, so the
            # weekly build renders one wrapper per digest instead of every item again.
            await self._file(doc, customer, taken, policy.channels[0] if policy.channels else None)
        try:
            await self.notifications.insert_one(doc)
        except DuplicateKeyError:  # a concurrent notify of the same event won
            again = await self.notifications.find_one({"_id": nid})
            return _decision_of(again or doc, duplicate=True)
        if policy.action is Action.SEND:
            channel = await self._send_notification(doc, prefs, policy.channels[0])
            return Decision(nid, policy.action, policy.reason, channel)
        if policy.action is Action.HOLD and deliver_at is not None:
            await self.schedule.add(f"h|{nid}", deliver_at)
        elif policy.action is Action.DIGEST and deliver_at is not None:
            await self.schedule.add(f"d|{doc['digest_id']}", deliver_at)
        return Decision(nid, policy.action, policy.reason, None, deliver_at)

    async def _file(self, doc: Document, customer: Mapping[str, Any], taken: float, channel: str | None) -> None:
        item = {f: doc[f] for f in _ITEM_FIELDS if f != "digest_id"}
        item["text"] = {channel: self.render_notification(doc, channel)} if channel else {}
        did = doc["digest_id"]
        on_insert = {"customer": doc["customer"], "due_at": doc["deliver_at"], "status": "scheduled", "created_at": time.time()}
        # A copy of the customer's own record as of ``taken``: the build uses it when the
        # store's change notes show no write since (one read fewer per digest), and reads
        # the record otherwise. Any filing's copy is valid with its time.
        fields = {f"items.{doc['_id']}": item, "who": {f: customer.get(f) for f in PREF_FIELDS}, "who_at": taken}
        if channel and await self._file_rendered(did, doc["_id"], item, on_insert, fields, doc["language"], channel):
            return
        # Every filing is a new revision of the digest's content: a text rendered before it
        # no longer counts (the build renders from the items).
        await self.digests.update_one({"_id": did}, {"$setOnInsert": on_insert, "$set": fields, "$inc": {"rev": 1}}, upsert=True)

    async def _file_rendered(
        self, did: str, nid: str, item: Document, on_insert: Document, fields: Document, language: str, channel: str
    ) -> bool:
        """File the item together with the whole digest rendered as it will then stand, for
        the channel and language it will most likely go out in, so the build sends that
        text instead of rendering it (the build is one burst for every customer; filings
        are spread over the period). False when another filing came in between the read
        and the write (the revision moved on, or it created the record first): the caller
        files the item alone."""
        current = await self.digests.find_one({"_id": did}, projection={"items": 1, "rev": 1, "status": 1})
        if current is not None and (current.get("status") != "scheduled" or "items" not in current or "rev" not in current):
            return False
        rev = int(current["rev"]) if current is not None else 0
        rendered = self.prerendered(rev + 1, language, channel, {**(current["items"] if current is not None else {}), nid: item})
        try:
            # A new record starts at revision 0 from the filter, then takes the $inc.
            done = await self.digests.update_one(
                {"_id": did, "rev": rev},
                {"$setOnInsert": on_insert, "$set": {**fields, "rendered": rendered}, "$inc": {"rev": 1}},
                upsert=current is None,
            )
        except DuplicateKeyError:  # a concurrent filing created the record first
            return False
        return done.matched_count == 1 or done.upserted_id is not None

    def prerendered(self, rev: int, language: str, channel: str, items: Mapping[str, Document]) -> Document:
        """The ``rendered`` field of a digest record of revision ``rev`` holding ``items``
        (by notification id, as in the record)."""
        return {
            "rev": rev,
            "n": len(items),
            "language": language,
            "channel": channel,
            "templates": self.renderer.fingerprint,
            "text": self.render_digest(language, channel, _item_list(items)),
        }

    def _rendered_text(self, digest: Mapping[str, Any], language: str, channel: str) -> str | None:
        """The digest's text rendered at filing, if it still says what a render now would."""
        r = digest.get("rendered")
        if not isinstance(r, dict) or r.get("rev") != digest.get("rev"):
            return None
        # The item count guards against items removed without a filing (withdrawn).
        if (r.get("n"), r.get("language"), r.get("channel"), r.get("templates")) != (
            len(digest.get("items") or {}), language, channel, self.renderer.fingerprint
        ):
            return None
        text = r.get("text")
        return text if isinstance(text, str) else None

    def _available(self, prefs: Preferences) -> Preferences:
        """Preferences with only the addresses whose channel this gateway can send on."""
        if self.channel_ok is None:
            return prefs
        ok = {c: a for c, a in prefs.addresses.items() if self.channel_ok(c, self._account(c, a.account))}
        return dataclasses.replace(prefs, addresses=ok)

    def _account(self, channel: str, account: str) -> str:
        return account or self.default_accounts.get(channel, "")

    def _outbound(self, prefs: Preferences, channel: str, key: str, text: str, topic: str) -> OutboundMessage | None:
        addr = prefs.addresses.get(channel)
        if addr is None:
            return None
        account = self._account(channel, addr.account)
        return OutboundMessage(
            channel=channel,
            account=account,
            recipient=addr.recipient,
            conversation=f"{channel}:{account}:{addr.recipient}",
            idempotency_key=key,
            text=text,
            topic=topic,
        )

    def render_notification(self, doc: Mapping[str, Any], channel: str) -> str:
        return self.renderer.render(
            doc["template"], doc["language"], channel, detail=doc["detail"], data=doc["data"], topic=doc["topic"]
        )

    async def _send_notification(self, doc: Document, prefs: Preferences, channel: str) -> str | None:
        text = self.render_notification(doc, channel)
        msg = self._outbound(prefs, channel, f"{KEY_PREFIX}n:{doc['_id']}:{channel}", text, doc["topic"])
        if msg is None:
            await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"status": "undeliverable"}})
            return None
        await self._enqueue([msg])
        await self.notifications.update_one(
            {"_id": doc["_id"]},
            {"$set": {"status": "enqueued", "channel": channel, "sent_at": self.clock.now()}, "$addToSet": {"tried": channel}},
        )
        return channel

    async def _enqueue(self, messages: Sequence[OutboundMessage], *, record: bool = True) -> None:
        for start in range(0, len(messages), _ENQUEUE_CHUNK):
            chunk = messages[start : start + _ENQUEUE_CHUNK]
            if record and self.message_store is not None:
                # Recorded before queueing so the sender's status marks land on a record.
                for msg in chunk:
                    await self.message_store.save_outbound(msg)
            await self.outbox.enqueue(chunk)

    # -- due work: held messages and digests -------------------------------------------------
    async def run_due(self, limit: int = 500) -> int:
        """Send what has fallen due (held messages, digests); returns how many were handled."""
        claimed = await self.schedule.claim_scored(self.clock.now(), limit)
        if not claimed:
            return 0
        members = [m for m, _ in claimed]
        await self.process(members, dict(claimed))
        await self.schedule.ack(members)
        return len(members)

    async def run_all_due(self, limit: int = 500, *, parallel: int = 2, settle: bool = True) -> int:
        """Run until nothing is due; returns how many members were handled.

        ``parallel`` claim loops share the event loop, so one batch renders while another
        waits for the database. ``settle`` then applies the digest batches' outcomes to the
        digest records (see :meth:`settle`); a caller timing the sends alone passes False.
        """

        async def loop() -> int:
            total = 0
            while n := await self.run_due(limit):
                total += n
            return total

        total = sum(await asyncio.gather(*(loop() for _ in range(max(1, parallel)))))
        if settle:
            await self.settle()
        return total

    async def process(self, members: Sequence[str], due: Mapping[str, float] | None = None) -> None:
        """Send claimed members; safe to repeat (a reclaimed lease runs it again).

        ``due`` gives members' due times as claimed (it lets digests be read by range).
        """
        held = [m[2:] for m in members if m.startswith("h|")]
        digests = [m[2:] for m in members if m.startswith("d|")]
        if held:
            await self._release_held(held)
        if digests:
            due = due or {}
            await self._send_digests(digests, {m[2:]: due[m] for m in members if m.startswith("d|") and m in due})

    async def _release_held(self, ids: list[str]) -> None:
        docs = (await find_by_ids(self.notifications, ids, where={"status": "held"})).values()
        records = await self.prefs.records({d["customer"] for d in docs})
        prefs = {cid: self._available(await self.prefs.effective_of(doc)) for cid, doc in records.items()}
        for doc in docs:
            p = prefs.get(doc["customer"])
            channels = list(p.reachable()) if p else []
            if p is None or not channels:
                await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"status": "undeliverable"}})
                continue
            await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"channels": channels}})
            doc["channels"] = channels
            await self._send_notification(doc, p, channels[0])

    async def _send_digests(self, ids: list[str], due_of: Mapping[str, float]) -> None:
        # No $in lists over the batch: a claimed batch of one due time is a contiguous run of
        # digest ids (Redis orders equal scores by member), so its digests are read with one
        # range scan on (due_at, _id) and filtered here. Items travel inside the digest
        # records; customers are read in small $in chunks (cheap, unlike one long list).
        # Outcomes are committed as one batch record (see :meth:`settle`), not one write
        # per digest.
        mine = set(ids)
        groups: dict[float, list[str]] = defaultdict(list)
        for did in ids:
            if did in due_of:
                groups[due_of[did]].append(did)
        found: set[str] = set()
        for due, gids in groups.items():
            lo, hi = min(gids), max(gids)
            # Digests created after this read (notify() filing into a digest that is due
            # already) fall inside the id range too; the batch's runs must not cover them.
            read_at = time.time()
            in_range = [d async for d in self.digests.find({"due_at": due, "_id": {"$gte": lo, "$lte": hi}}).sort("_id", ASCENDING)]
            built = await self._built(due)
            found.update(str(d["_id"]) for d in in_range if d["_id"] in mine)
            todo = {
                str(d["_id"]): d
                for d in in_range
                if d["_id"] in mine and d.get("status") == "scheduled" and built(d) is None
            }
            outcomes = await self._build_digests(todo)
            # Runs of consecutive digests with one outcome; a digest in the range that is
            # not ours and still scheduled (another worker's, or another batch's) ends a run.
            runs: list[Document] = []
            run: list[str] = []
            key: tuple[Any, ...] | None = None
            for d in in_range:
                did = str(d["_id"])
                k = outcomes.get(did)
                if k is None:
                    if d.get("status") == "scheduled":
                        _close_run(runs, run, key)
                        run, key = [], None
                    continue
                if k != key:
                    _close_run(runs, run, key)
                    run, key = [], k
                run.append(did)
            _close_run(runs, run, key)
            await self._commit(due, read_at, runs, len(outcomes))
        # Members whose due time is unknown or differs from the record (a reclaimed lease):
        # one by one, by equality, committed like the rest.
        for did in (i for i in ids if i not in found):
            read_at = time.time()
            digest = await self.digests.find_one({"_id": did, "status": "scheduled"})
            if digest is None:
                continue
            due = float(digest["due_at"])
            if (await self._built(due))(digest) is not None:
                continue
            runs = []
            for k in (await self._build_digests({did: digest})).values():
                _close_run(runs, [did], k)
            await self._commit(due, read_at, runs, 1)

    async def _built(self, due: float) -> Callable[[Mapping[str, Any]], Document | None]:
        """The run of a batch already built but not yet settled that covers a digest."""
        runs = [
            (r, float(b["read_at"]))
            async for b in self.batches.find({"due_at": due}, projection={"runs": 1, "read_at": 1})
            for r in b["runs"]
        ]

        def covering(digest: Mapping[str, Any]) -> Document | None:
            did, created = str(digest["_id"]), float(digest.get("created_at", 0))
            return next((r for r, read_at in runs if r["lo"] <= did <= r["hi"] and created <= read_at), None)

        return covering

    async def _commit(self, due: float, read_at: float, runs: list[Document], count: int) -> None:
        if runs:
            await self.batches.insert_one(
                {"_id": uuid.uuid4().hex, "due_at": due, "read_at": read_at, "runs": runs, "count": count, "created_at": time.time()}
            )

    async def settle(self, limit: int = 1000) -> int:
        """Apply built batches' outcomes to the digest records, oldest first; returns how
        many batches were applied. Idempotent (only still-scheduled records change), so any
        worker may run it, and a crash half-way is finished by the next call. It runs after
        the sends because on the embedded store one status write per record costs more than
        building the digest; until then :meth:`_built` keeps the batch's digests from
        being built again."""
        done = 0
        async for batch in self.batches.find({}).sort("created_at", ASCENDING).limit(limit):
            for r in batch["runs"]:
                await self.digests.update_many(
                    {"due_at": batch["due_at"], "_id": {"$gte": r["lo"], "$lte": r["hi"]}, "status": "scheduled",
                     "created_at": {"$lte": batch["read_at"]}},
                    {"$set": _outcome_fields(r, float(batch["created_at"]))},
                )
            await self.batches.delete_one({"_id": batch["_id"]})
            done += 1
        return done

    async def _settle_one(self, digest: Document) -> Document:
        """A built digest's outcome applied to its record ahead of its batch (settle() then
        leaves it alone): what the fallback needs, without settling every batch first."""
        run = (await self._built(float(digest["due_at"])))(digest)
        if run is None:
            return digest
        fields = _outcome_fields(run, self.clock.now())
        await self.digests.update_one({"_id": digest["_id"], "status": "scheduled"}, {"$set": fields})
        return {**digest, **fields}

    async def _digest_customers(self, todo: Mapping[str, Document]) -> dict[str, Document]:
        """The customer records for a batch: the digests' own copies where the preference
        store noted no change since they were taken, MongoDB for the rest."""
        copies = [(str(d["customer"]), float(d["who_at"])) for d in todo.values() if d.get("who") is not None and "who_at" in d]
        current = await self.prefs.unchanged_since(copies)
        out: dict[str, Document] = {}
        fresh = {c for (c, _), ok in zip(copies, current) if ok}
        for d in todo.values():
            cid = str(d["customer"])
            if cid in fresh and cid not in out:
                out[cid] = {"_id": cid, **d["who"]}
        out.update(await self.prefs.records({str(d["customer"]) for d in todo.values()} - set(out)))
        return out

    async def _items_of(self, digest: Mapping[str, Any]) -> list[Document]:
        """A digest's content: every item filed under it, whatever its status, so a digest
        rebuilt after a crash renders exactly what the first build rendered. Records filed
        before items travelled inside the digest are read from the notifications."""
        if "items" in digest:
            return _item_list(digest.get("items") or {})
        return [d async for d in self.notifications.find({"digest_id": digest["_id"]}, projection=_ITEM_FIELDS)]

    async def _build_digests(self, todo: Mapping[str, Document]) -> dict[str, tuple[Any, ...]]:
        """Render and queue the digests; returns each one's outcome (status, channels)."""
        outcomes: dict[str, tuple[Any, ...]] = {}
        messages: list[OutboundMessage] = []
        customers = await self._digest_customers(todo)
        for did, digest in todo.items():
            # Items travel in the record; older records' items are read from the notifications.
            its = None if "items" in digest else await self._items_of(digest)
            if not (its or digest.get("items")):
                outcomes[did] = ("empty", ())
                continue
            cust = customers.get(str(digest["customer"]))
            p = self._available(await self.prefs.effective_of(cust)) if cust else None
            channels = p.reachable() if p else ()
            if p is None or not channels:
                outcomes[did] = ("undeliverable", ())
                continue
            text = self._rendered_text(digest, p.language, channels[0])
            if text is None:
                text = self.render_digest(p.language, channels[0], its or await self._items_of(digest))
            msg = self._digest_message(did, p, channels[0], text)
            if msg is not None:
                messages.append(msg)
            outcomes[did] = ("sent", channels)
        # The outbox's sender writes each digest's message record when it sends it: one
        # write per message here would cost more than the whole build.
        await self._enqueue(messages, record=False)
        return outcomes

    def _digest_message(self, did: str, prefs: Preferences, channel: str, text: str) -> OutboundMessage | None:
        return self._outbound(prefs, channel, f"{KEY_PREFIX}d:{did}:{channel}", text, "digest")

    def render_digest(self, language: str, channel: str, items: list[Document]) -> str:
        """A digest: items grouped by topic, groups and items newest first."""
        groups: dict[str, list[dict[str, str]]] = {}
        for doc in sorted(items, key=lambda d: d["created_at"], reverse=True):
            text = (doc.get("text") or {}).get(channel) or self.render_notification(doc, channel)
            groups.setdefault(doc["topic"], []).append({"text": text, "headline": text.splitlines()[0] if text else ""})
        period = "weekly" if any(d.get("period") == "weekly" for d in items) else "daily"
        return self.renderer.render(
            "digest",
            language,
            channel,
            period=period,
            total=len(items),
            groups=[{"topic": t, "entries": its} for t, its in groups.items()],
        )

    # -- fallback -------------------------------------------------------------------------------
    async def on_give_up(self, reply: OutboundMessage, status: str, reason: str) -> None:
        """Outbox give-up hook: queue the same content on the customer's next channel."""
        key = reply.idempotency_key
        if not key.startswith(KEY_PREFIX):
            return
        try:
            _, kind, ident, channel = key.split(":", 3)
        except ValueError:
            return
        coll = self.notifications if kind == "n" else self.digests
        doc = await coll.find_one({"_id": ident})
        if doc is None:
            return
        if kind == "d" and doc.get("status") == "scheduled":
            doc = await self._settle_one(doc)
        channels: list[str] = list(doc.get("channels") or [])
        nxt = channels[channels.index(channel) + 1] if channel in channels[:-1] else None
        log.info("notification %s undeliverable on %s (%s: %s); next: %s", key, channel, status, reason, nxt)
        await coll.update_one({"_id": ident}, {"$addToSet": {"failed": channel}})
        if nxt is None:
            await coll.update_one({"_id": ident}, {"$set": {"status": "undeliverable"}})
            return
        prefs = self._available(await self.prefs.effective(doc["customer"]))
        if kind == "n":
            await self._send_notification(doc, prefs, nxt)
            return
        msg = self._digest_message(ident, prefs, nxt, self.render_digest(prefs.language, nxt, await self._items_of(doc)))
        if msg is not None:
            await self._enqueue([msg])
            await coll.update_one({"_id": ident}, {"$set": {"channel": nxt}})

    # -- recovery ---------------------------------------------------------------------------------
    async def resync(self, stale_s: float = 60.0) -> int:
        """Re-add to Redis what MongoDB says is waiting, and finish interrupted sends.

        Run at startup: a lost Redis (or a crash between the record and the schedule)
        then delays nothing; re-adding is NX and sends are keyed, so it is always safe.
        """
        await self.settle()  # built batches first: their digests are not waiting any more
        members: dict[str, float] = {}
        async for doc in self.notifications.find({"status": "held"}, projection={"deliver_at": 1}):
            members[f"h|{doc['_id']}"] = float(doc["deliver_at"])
        async for doc in self.digests.find({"status": "scheduled"}, projection={"due_at": 1}):
            members[f"d|{doc['_id']}"] = float(doc["due_at"])
        # Skip what is already claimed by a live worker.
        leased = {m.decode() if isinstance(m, bytes) else m for m in await self.redis.zrange("kefu:prefs:due:lease", 0, -1)}
        await self.schedule.add_many({m: t for m, t in members.items() if m not in leased})
        resent = 0
        cutoff = self.clock.now() - stale_s
        async for doc in self.notifications.find({"status": "sending", "created_at": {"$lt": cutoff}}):
            prefs = self._available(await self.prefs.effective(doc["customer"]))
            if doc["channels"]:
                await self._send_notification(doc, prefs, doc["channels"][0])
                resent += 1
        return len(members) + resent


_ITEM_FIELDS = {f: 1 for f in ("digest_id", "topic", "template", "language", "detail", "data", "created_at", "period")}


def _item_list(items: Mapping[str, Any]) -> list[Document]:
    """A digest record's items (by notification id) as the documents render_digest takes."""
    return [dict(v, _id=k) for k, v in items.items()]


def _close_run(runs: list[Document], run: list[str], key: tuple[Any, ...] | None) -> None:
    if run and key is not None:
        runs.append({"lo": run[0], "hi": run[-1], "status": key[0], "channels": list(key[1])})


def _outcome_fields(run: Mapping[str, Any], now: float) -> Document:
    """What a batch run says of its digests, as fields of their records."""
    fields: Document = {"status": run["status"], "done_at": now}
    if run["status"] == "sent":
        fields.update(channels=list(run["channels"]), channel=run["channels"][0])
    return fields


def _parse(kind: Any, value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidPreference(f"{field}: unknown {value!r} (known: {known})", field=field) from None


def _decision_of(doc: Mapping[str, Any], *, duplicate: bool) -> Decision:
    return Decision(
        notification_id=str(doc["_id"]),
        action=Action(doc["action"]),
        reason=str(doc["reason"]),
        channel=doc.get("channel"),
        deliver_at=doc.get("deliver_at"),
        duplicate=duplicate,
    )
