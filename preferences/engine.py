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

Digests live in :mod:`preferences.digests`, turning a decision into outbox messages in
:mod:`preferences.delivery`.

Fallback: :meth:`NotificationEngine.on_give_up` is handed to the outbox senders. When a channel cannot deliver
(WeChat's 48 h window, a refused or dead message), the same content is rendered for the
customer's next channel and queued with that channel's key.

What waits (a digest or held message queued, sent, released) is announced on
:data:`SCHEDULE_CHANGED` (:class:`bot.announce.Announcer`: one publish per burst, never
awaited), so the console's digest calendar follows it in every web process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure
from redis.asyncio import Redis

from bot.announce import Announcer
from bot.logs import ref
from bot.messages import OutboundMessage
from bot.mongo import Document, find_by_ids, newest_first
from bot.outbox import Outbox
from bot.store import MessageStore
from preferences.activity_counts import ActivityCounts, Changes
from preferences.clock import Clock, SystemClock, utc
from preferences.errors import InvalidPreference, UnknownCustomer
from preferences.model import Importance, Notification, Preferences, Topic
from preferences.policy import Action, decide
from preferences.render import Renderer
from preferences.delivery import KEY_PREFIX, Delivery
from preferences.digests import RESYNC_LOOKBACK_S, Digests, Filing
from preferences.schedule import DueSchedule
from preferences.store import PreferenceStore

log = logging.getLogger(__name__)

_ENQUEUE_CHUNK = 500
#: Notifications per round of reads and writes in notify_many.
BATCH = 1000
#: Announced when what waits changes: a digest or held message queued, sent or released.
SCHEDULE_CHANGED = "kefu:notifications:schedule:changed"


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
        self.redis = redis
        self.prefs = prefs
        self.clock = clock or SystemClock()
        self.notifications = db["notifications"]
        self.schedule = DueSchedule(redis, lease_s=lease_s)
        self.delivery = Delivery(
            outbox, prefs, renderer, message_store=message_store, channel_ok=channel_ok, default_accounts=default_accounts
        )
        self.digests = Digests(db, prefs, self.delivery, self.clock)
        # What each batch did, counted live for the console's activity dashboard.
        self.counts = ActivityCounts(redis)
        # What waits changed: the console's digest calendar reads it again.
        self.announcer = Announcer(redis, SCHEDULE_CHANGED)

    @property
    def renderer(self) -> Renderer:
        return self.delivery.renderer

    @renderer.setter
    def renderer(self, renderer: Renderer) -> None:
        self.delivery.renderer = renderer  # a restarted gateway's templates

    async def settle(self, limit: int = 1000) -> int:
        """Apply built digest batches to the digest records (see :meth:`Digests.settle`)."""
        settled = await self.digests.settle(limit)
        if settled:
            self.announcer.changed()
        return settled

    def prerendered(self, rev: int, language: str, channel: str, items: Mapping[str, Document]) -> Document:
        return self.digests.prerendered(rev, language, channel, items)

    def render_notification(self, doc: Mapping[str, Any], channel: str) -> str:
        return self.delivery.render_notification(doc, channel)

    async def ensure_indexes(self) -> None:
        await self.notifications.create_indexes(
            [
                IndexModel([("customer", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("digest_id", ASCENDING)]),
                # A due batch's items in one range scan (see Digests.send).
                IndexModel([("deliver_at", ASCENDING), ("digest_id", ASCENDING)]),
                IndexModel([("status", ASCENDING)]),
                # The activity dashboard's reads (see the reads below): its recount by
                # time, its drill-down by topic or outcome, the latest of a template.
                IndexModel([("created_at", DESCENDING)]),
                IndexModel([("topic", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("action", ASCENDING), ("created_at", DESCENDING)]),
                # The drill-down by topic *and* outcome: the embedded server walks a
                # compound index only when its leading fields are exactly the query's
                # equalities; without this one it read every record of the period
                # through the created_at index (1.4 s at 500,000 records).
                IndexModel([("action", ASCENDING), ("topic", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("template", ASCENDING), ("created_at", DESCENDING)]),
            ]
        )
        await self.digests.ensure_indexes()

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
        """:meth:`submit` for callers holding plain values (the API, the data-rights links).

        Raises:
            InvalidPreference: unknown topic or importance.
            UnknownCustomer: no such customer.
        """
        topic_e = _parse(Topic, topic, "topic")
        importance_e = _parse(Importance, importance, "importance")
        return await self.submit(Notification(customer_id, topic_e, importance_e, data, key, template))

    async def submit(self, n: Notification) -> Decision:
        """Send (or hold, digest or suppress) one proactive message as the customer wishes:
        :meth:`notify_many` with a batch of one.

        Raises:
            UnknownCustomer: no such customer.
        """
        result = (await self.notify_many([n]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def notify_many(self, notifications: Sequence[Notification]) -> list[Decision | Exception]:
        """:meth:`submit` for many notifications at once (a campaign, a renewal scan).

        Returns one entry per notification, in order: its decision, or the exception that
        stopped it (an unknown customer, data the store cannot hold, a template that does
        not render). Such an item fails alone and changes nothing; its neighbours go on.
        Errors of the stores themselves (Redis or MongoDB down) are raised.

        Per batch of :data:`BATCH` the stores see a fixed set of commands, whatever the mix:
        the duplicate check and the preference reads as ``$in`` chunks, one bulk write
        filing the digest items, one outbox script call per 500 sends, one ``insert_many``
        of the records and one due-list update.
        """
        out: list[Decision | Exception] = []
        for start in range(0, len(notifications), BATCH):
            out += await self._notify_batch(notifications[start : start + BATCH])
        return out

    async def _notify_batch(self, batch: Sequence[Notification]) -> list[Decision | Exception]:
        results: list[Decision | Exception | None] = [None] * len(batch)
        ids: dict[int, str] = {}
        for i, n in enumerate(batch):
            try:
                ids[i] = notification_id(n.customer, n.topic.value, n.key, n.importance.value, n.data)
            except Exception as exc:  # data that cannot be keyed (a lone surrogate)
                results[i] = _failed(exc, "")
        # The earlier record, if any, is the answer: notified once, whatever is asked again.
        known = await find_by_ids(self.notifications, set(ids.values()), projection=_DECISION_FIELDS)
        first: dict[str, int] = {}
        for i, nid in ids.items():
            if nid in known:
                results[i] = _decision_of(known[nid], duplicate=True)
            else:
                first.setdefault(nid, i)
        taken = time.time()  # before the read: a copy is as old as the moment it was asked for
        customers = await self.prefs.records({batch[i].customer for i in first.values()})
        now = self.clock.now()
        planned: list[_Planned] = []
        for nid, i in first.items():
            try:
                planned.append(await self._plan(batch[i], nid, i, customers.get(batch[i].customer), taken, now))
            except Exception as exc:
                results[i] = _failed(exc, nid)
        # Filed before the notifications are recorded: a crash in between leaves an item
        # the digest will carry (and a retried call files the same item again, keyed by
        # id), never a recorded item the digest misses.
        unfiled = await self.digests.file_many([p.filing for p in planned if p.filing is not None])
        for p in planned:
            if p.doc["_id"] in unfiled:
                results[p.index] = _failed(unfiled[p.doc["_id"]], p.doc["_id"])
        planned = [p for p in planned if results[p.index] is None]
        # Queued before the records are written: a crash in between leaves a queued
        # message and no record, and a retried call decides again and queues the same
        # key, which the outbox sends once. Records first would leave one saying "sent"
        # for a message that never was.
        await self.delivery.enqueue([p.message for p in planned if p.message is not None], record=False)
        inserted = await self._insert(planned, results)
        changes = Changes()
        for p in inserted:
            changes.recorded(p.doc)
        await self.counts.add(changes)
        await self.schedule.add_many({p.member: p.deliver_at for p in inserted if p.member and p.deliver_at is not None})
        if any(p.deliver_at is not None or p.filing is not None for p in inserted):
            self.announcer.changed()  # a digest or held message is waiting
        for p in inserted:
            results[p.index] = p.decision
        # A notification asked twice in one batch: the second is the first's duplicate.
        for i, nid in ids.items():
            if results[i] is None:
                earlier = results[first[nid]]
                results[i] = dataclasses.replace(earlier, duplicate=True) if isinstance(earlier, Decision) else earlier
        return [r if r is not None else RuntimeError("not decided") for r in results]

    async def _plan(self, n: Notification, nid: str, index: int, customer: Document | None, taken: float, now: float) -> _Planned:
        if customer is None:
            raise UnknownCustomer(f"unknown customer {n.customer!r}")
        prefs = self.delivery.available(await self.prefs.effective_of(customer))
        ticket_open = bool(n.data.get("ticket_open", True)) if n.topic is Topic.REPAIR else False
        policy = decide(prefs, n.topic, n.importance, utc(now), ticket_open=ticket_open)
        deliver_at = policy.deliver_at.timestamp() if policy.deliver_at else None
        doc: Document = {
            "_id": nid,
            "customer": n.customer,
            "topic": n.topic.value,
            "importance": n.importance.value,
            "data": dict(n.data),
            "template": n.template or n.topic.value,
            "created_at": now,
            "action": policy.action.value,
            "reason": policy.reason,
            "channels": list(policy.channels),
            "detail": policy.detail.value,
            "language": policy.language,
            "deliver_at": deliver_at,
            "period": policy.digest.value if policy.digest else None,
            "status": _STATUS[policy.action],
            "tried": [],
        }
        p = _Planned(index, doc, Decision(nid, policy.action, policy.reason, None, deliver_at), deliver_at)
        if policy.action is Action.SEND:
            channel = policy.channels[0]
            text = self.delivery.render_notification(doc, channel)
            p.message = self.delivery.outbound(prefs, channel, f"{KEY_PREFIX}n:{nid}:{channel}", text, doc["topic"])
            if p.message is None:
                doc["status"] = "undeliverable"
            else:
                doc.update(status="enqueued", channel=channel, sent_at=now, tried=[channel])
                p.decision = Decision(nid, policy.action, policy.reason, channel)
        elif policy.action is Action.HOLD and deliver_at is not None:
            p.member = f"h|{nid}"
        elif policy.action is Action.DIGEST and deliver_at is not None:
            doc["digest_id"] = digest_id(n.customer, deliver_at)
            p.member = f"d|{doc['digest_id']}"
            p.filing = self.digests.filing(doc, customer, taken, policy.channels[0] if policy.channels else None)
        # Encoded here, item by item: a document the store cannot hold fails alone, where
        # the driver would otherwise refuse the whole batch's insert_many.
        p.raw = RawBSONDocument(bson.encode(doc))
        return p

    async def _insert(self, planned: Sequence[_Planned], results: list[Decision | Exception | None]) -> list[_Planned]:
        """Record the batch with one ``insert_many``; returns the items recorded now. A
        duplicate key means a concurrent call recorded the same notification first: its
        decision is read and returned as a duplicate."""
        if not planned:
            return []
        failed: dict[int, dict[str, Any]] = {}
        try:
            await self.notifications.insert_many([p.raw for p in planned if p.raw is not None], ordered=False)
        except BulkWriteError as exc:
            failed = {int(err["index"]): err for err in exc.details.get("writeErrors", [])}
        raced = [planned[k].doc["_id"] for k, err in failed.items() if err.get("code") == 11000]
        earlier = await find_by_ids(self.notifications, raced, projection=_DECISION_FIELDS) if raced else {}
        for k, err in failed.items():
            p = planned[k]
            if err.get("code") == 11000 and p.doc["_id"] in earlier:
                results[p.index] = _decision_of(earlier[p.doc["_id"]], duplicate=True)
            else:
                results[p.index] = _failed(OperationFailure(str(err.get("errmsg", "write error")), err.get("code")), p.doc["_id"])
        return [p for k, p in enumerate(planned) if k not in failed]

    async def _send_notification(self, doc: Document, prefs: Preferences, channel: str) -> str | None:
        """Queue ``doc`` on ``channel``; ``doc`` is updated as its record is (the caller
        counts the change)."""
        text = self.delivery.render_notification(doc, channel)
        msg = self.delivery.outbound(prefs, channel, f"{KEY_PREFIX}n:{doc['_id']}:{channel}", text, doc["topic"])
        if msg is None:
            await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"status": "undeliverable"}})
            doc["status"] = "undeliverable"
            return None
        await self.delivery.enqueue([msg])
        sent_at = self.clock.now()
        await self.notifications.update_one(
            {"_id": doc["_id"]},
            {"$set": {"status": "enqueued", "channel": channel, "sent_at": sent_at}, "$addToSet": {"tried": channel}},
        )
        doc.update(status="enqueued", channel=channel, sent_at=sent_at, tried=_added(doc.get("tried"), channel))
        return channel

    # -- the customer's own view ------------------------------------------------------------
    async def recent(self, customer_id: str, *, limit: int = 50, skip: int = 0, topic: str = "") -> list[Document]:
        """The customer's notifications, newest first (rendered text and routing, no secrets)."""
        query: Document = {"customer": customer_id}
        if topic:
            query["topic"] = topic
        fields = {"topic": 1, "importance": 1, "data": 1, "created_at": 1, "action": 1, "status": 1, "channel": 1, "period": 1, "reason": 1}
        return await newest_first(self.notifications, query, field="created_at", now=self.clock.now(), skip=skip, limit=limit, projection=fields)

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
        try:
            if held:
                await self._release_held(held)
            if digests:
                due = due or {}
                await self.digests.send(digests, {m[2:]: due[m] for m in members if m.startswith("d|") and m in due})
        finally:
            if members:
                self.announcer.changed()  # released or sent: no longer waiting

    async def _release_held(self, ids: list[str]) -> None:
        docs = (await find_by_ids(self.notifications, ids, where={"status": "held"})).values()
        records = await self.prefs.records({d["customer"] for d in docs})
        prefs = {cid: self.delivery.available(await self.prefs.effective_of(doc)) for cid, doc in records.items()}
        changes = Changes()
        try:
            for doc in docs:
                before = dict(doc)
                p = prefs.get(doc["customer"])
                channels = list(p.reachable()) if p else []
                if p is None or not channels:
                    await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"status": "undeliverable"}})
                    doc["status"] = "undeliverable"
                else:
                    await self.notifications.update_one({"_id": doc["_id"]}, {"$set": {"channels": channels}})
                    doc["channels"] = channels
                    await self._send_notification(doc, p, channels[0])
                changes.moved(before, doc)
        finally:
            await self.counts.add(changes)  # what was done, even when one send failed

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
        coll = self.notifications if kind == "n" else self.digests.records
        doc = await coll.find_one({"_id": ident})
        if doc is None:
            return
        if kind == "d" and doc.get("status") == "scheduled":
            doc = await self.digests.settle_one(doc)
        channels: list[str] = list(doc.get("channels") or [])
        nxt = channels[channels.index(channel) + 1] if channel in channels[:-1] else None
        log.info("notification %s undeliverable on %s (%s: %s); next: %s", ref(key), channel, status, reason, nxt)
        before = dict(doc)
        changes = Changes()
        await coll.update_one({"_id": ident}, {"$addToSet": {"failed": channel}})
        doc["failed"] = _added(doc.get("failed"), channel)
        if nxt is None:
            await coll.update_one({"_id": ident}, {"$set": {"status": "undeliverable"}})
            doc["status"] = "undeliverable"
            if kind == "n":
                changes.moved(before, doc)
                await self.counts.add(changes)
            return
        prefs = self.delivery.available(await self.prefs.effective(doc["customer"]))
        if kind == "n":
            try:
                await self._send_notification(doc, prefs, nxt)
            finally:
                changes.moved(before, doc)
                await self.counts.add(changes)
            return
        msg = self.digests.message(ident, prefs, nxt, self.delivery.render_digest(prefs.language, nxt, await self.digests.items_of(doc)))
        if msg is not None:
            await self.delivery.enqueue([msg])
            await coll.update_one({"_id": ident}, {"$set": {"channel": nxt}})

    async def held_between(self, start: float, end: float) -> list[tuple[float, int]]:
        """Notifications held for quiet hours per release time in ``[start, end)``."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"status": "held", "deliver_at": {"$gte": start, "$lt": end}}},
            {"$group": {"_id": "$deliver_at", "n": {"$sum": 1}}},
        ]
        return sorted([(float(d["_id"]), int(d["n"])) async for d in await self.notifications.aggregate(pipeline)])

    # -- recovery ---------------------------------------------------------------------------------
    async def resync(self, stale_s: float = 60.0) -> int:
        """Re-add to Redis what MongoDB says is waiting, and finish interrupted sends.

        Run at startup: a lost Redis (or a crash between the record and the schedule)
        then delays nothing; re-adding is NX and sends are keyed, so it is always safe.
        """
        await self.digests.settle()  # built batches first: their digests are not waiting any more
        members: dict[str, float] = {}
        async for doc in self.notifications.find({"status": "held"}, projection={"deliver_at": 1}):
            members[f"h|{doc['_id']}"] = float(doc["deliver_at"])
        for did, due in (await self.digests.waiting(self.clock.now() - RESYNC_LOOKBACK_S)).items():
            members[f"d|{did}"] = due
        # Skip what is already claimed by a live worker.
        leased = {m.decode() if isinstance(m, bytes) else m for m in await self.redis.zrange("kefu:prefs:due:lease", 0, -1)}
        await self.schedule.add_many({m: t for m, t in members.items() if m not in leased})
        resent = 0
        cutoff = self.clock.now() - stale_s
        changes = Changes()
        async for doc in self.notifications.find({"status": "sending", "created_at": {"$lt": cutoff}}):
            prefs = self.delivery.available(await self.prefs.effective(doc["customer"]))
            if doc["channels"]:
                before = dict(doc)
                await self._send_notification(doc, prefs, doc["channels"][0])
                changes.moved(before, doc)
                resent += 1
        await self.counts.add(changes)
        return len(members) + resent

    # -- reads for the console's activity dashboard ---------------------------------------------
    # The dashboard (preferences.activity) reads the records through these, served by
    # the indexes ensure_indexes creates for them.
    def records_between(self, since: float, until: float | None, projection: Mapping[str, Any]) -> AsyncCursor[Document]:
        """The records created in ``[since, until)`` (to now when ``until`` is None)."""
        created: Document = {"$gte": since} if until is None else {"$gte": since, "$lt": until}
        return self.notifications.find({"created_at": created}, projection=projection)

    async def newest_record_before(self, before: float) -> float | None:
        """When the newest record created before ``before`` was (None: there is none),
        through the ``created_at`` index."""
        doc = await self.notifications.find_one(
            {"created_at": {"$lt": before}}, projection={"created_at": 1}, sort=[("created_at", DESCENDING)]
        )
        return None if doc is None else float(doc["created_at"])

    def newest_records(self, where: Mapping[str, Any], projection: Mapping[str, Any], limit: int) -> AsyncCursor[Document]:
        """Records matching ``where``, newest first."""
        return self.notifications.find(dict(where), projection=projection).sort("created_at", DESCENDING).limit(limit)

    async def data_of(self, notification_id: str) -> Document | None:
        """The data a notification was rendered from (to preview a template with it)."""
        doc = await self.notifications.find_one({"_id": notification_id}, projection={"data": 1})
        return None if doc is None else dict(doc.get("data") or {})


def _added(values: Any, value: str) -> list[Any]:
    """A record's list after ``$addToSet``."""
    out = list(values or [])
    return out if value in out else [*out, value]


def _parse(kind: Any, value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidPreference(f"{field}: unknown {value!r} (known: {known})", field=field) from None


_STATUS = {Action.SEND: "sending", Action.HOLD: "held", Action.DIGEST: "digest", Action.SUPPRESS: "suppressed"}
_DECISION_FIELDS = {f: 1 for f in ("action", "reason", "channel", "deliver_at")}


@dataclass(slots=True)
class _Planned:
    """One new notification of a batch, decided and ready to be written."""

    index: int
    doc: Document
    decision: Decision
    deliver_at: float | None
    raw: RawBSONDocument | None = None
    message: OutboundMessage | None = None
    member: str = ""  # its due-list member (held or digest)
    filing: Filing | None = None


def _failed(exc: Exception, nid: str) -> Exception:
    # The type and the store's code only: a message may quote the customer's data.
    log.warning("notification %s failed: %s %s", ref(nid), type(exc).__name__, getattr(exc, "code", "") or "")
    return exc


def _decision_of(doc: Mapping[str, Any], *, duplicate: bool) -> Decision:
    return Decision(
        notification_id=str(doc["_id"]),
        action=Action(doc["action"]),
        reason=str(doc["reason"]),
        channel=doc.get("channel"),
        deliver_at=doc.get("deliver_at"),
        duplicate=duplicate,
    )
