"""Reviews in, remediation out: each review answered at most once.

``ingest`` stores a review under its marketplace id (``reviews`` ``{_id:
"<marketplace>:<review id>"}``): a review pushed by webhook, pulled again and imported
from a CSV is one document, so it is never answered twice. ``process`` claims a new
review (``status`` new -> processing, with a lease so a crashed worker's claim expires),
and for a bad review about logistics:

1. extracts order, carrier and days late (:mod:`.detect`), completes them from the order
   record when we have it (``orders``: carrier, region, shipped/delivered dates);
2. matches the carrier's SLA (``carrier_slas``: carrier, region, promised days,
   compensation policy) and computes the breach;
3. issues a coupon through the coupon connector (idempotency key = the review);
4. renders the compensation message (jinja2, the review's language) and replies on the
   marketplace, or, when that fails and the buyer is our customer, through their
   preferred channel (notification engine, topic ``review``);
5. is resolved when the reply went out; ``track_overdue`` flags reviews still open 48 h
   after they arrived. Carrier counters (``carrier_stats``) feed the console's JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson.errors import InvalidDocument
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.asyncio import Redis

from bot.announce import Announcer
from bot.language import detect
from bot.logs import ref
from bot.mongo import IN_CHUNK, Document, find_by_ids
from bot.templates import Templates
from preferences.clock import Clock, SystemClock
from preferences.model import Importance, Notification, Topic
from skills.connectors.base import ConnectorError
from skills.connectors.coupons import CouponConnector
from skills.connectors.marketplace import MarketplaceConnector, Review
from skills.connectors.registry import Connectors
from skills.notifier import Notifier
from skills.review_remediation.detect import Complaint, extract, is_logistics, order_id_in

log = logging.getLogger(__name__)

DAY = 86_400.0
RESOLVE_WITHIN_S = 48 * 3600.0
#: Redis channel a change of the carrier counters is announced on (the console's board).
CHANGED = "kefu:carriers:changed"
#: The carrier row of reviews whose carrier is not known.
UNKNOWN = "unknown"
MARKETPLACES = ("amazon", "shopee", "temu")


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """``reviews:`` in kefu.yml."""

    bad_rating: int = 3  # this many stars or fewer is a bad review
    lease_s: float = 120.0
    min_compensation: float = 0.0
    concurrency: int = 16  # reviews of a batch remedied at once (coupon and reply requests in flight)

    @classmethod
    def from_section(cls, s: Mapping[str, Any]) -> ReviewSettings:
        return cls(bad_rating=int(s.get("bad_rating", 3)), lease_s=float(s.get("lease_s", 120.0)),
                   concurrency=max(1, int(s.get("concurrency", 16))))


@dataclass(frozen=True, slots=True)
class ChatRemedy:
    """What a logistics complaint made in chat came to.

    ``status``: ``need_order`` (no order number given), ``unknown_order`` (not one of
    this customer's orders), ``not_due`` (within the carrier's promise: ``due_at``),
    ``remedied`` (``facts`` and ``coupon`` as for a review; ``message`` already sent
    once when ``repeat``).
    """

    status: str
    order_id: str = ""
    facts: Document = field(default_factory=dict)
    coupon: Document | None = None
    due_at: float | None = None
    repeat: bool = False


@dataclass
class Outcome:
    review: str
    status: str  # duplicate, ignored, resolved, pending
    detail: Document = field(default_factory=dict)


class Reviews:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        redis: Redis,
        templates: Templates,
        connectors: Connectors,
        notifier: Notifier,
        *,
        settings: ReviewSettings | None = None,
        clock: Clock | None = None,
        nlu: Any = None,
    ) -> None:
        self.reviews = db["reviews"]
        self.slas = db["carrier_slas"]
        self.orders = db["orders"]
        self.stats = db["carrier_stats"]
        self.cursors = db["review_cursors"]
        self.customers = db["crm_customers"]
        self.redis = redis
        self.templates = templates
        self.connectors = connectors
        self.notifier = notifier
        self.settings = settings or ReviewSettings()
        self.clock = clock or SystemClock()
        self.nlu = nlu  # bot.nlu.client.NluClient, when the gateway has one
        self._aliases: dict[str, str] | None = None
        # The carrier counters' changes, for the console's carrier board (once per batch).
        self.announcer = Announcer(redis, CHANGED)

    async def ensure_indexes(self) -> None:
        await self.reviews.create_indexes(
            [IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]), IndexModel([("carrier", ASCENDING)]),
             IndexModel([("resolve_by", ASCENDING)]), IndexModel([("conversation", ASCENDING)], sparse=True)]
        )
        await self.slas.create_indexes([IndexModel([("carrier", ASCENDING), ("region", ASCENDING)])])

    def marketplace(self, name: str) -> MarketplaceConnector | None:
        return self.connectors.get(name, MarketplaceConnector)

    # -- ingest ----------------------------------------------------------------------------
    def _new_doc(self, review: Review, via: str, now: float, claim: str) -> Document:
        doc: Document = {
            "_id": review.key, "marketplace": review.marketplace, "review_id": review.review_id, "rating": review.rating,
            "text": review.text, "order_id": review.order_id, "buyer": review.buyer, "region": review.region,
            "language": review.language or detect(review.text, "en"), "created_at": review.created_at or now,
            "received_at": now, "via": via, "status": "new", "lease_until": 0.0,
        }
        if claim:  # stored already claimed by the caller, who remedies it next
            doc.update(status="processing", lease_until=now + self.settings.lease_s, claim=claim)
        return doc

    async def ingest(self, review: Review, *, via: str) -> bool:
        """Store a review; False when it was already known (nothing else happens then)."""
        return (await self.ingest_many([review], via=via))[0] == "new"

    async def ingest_many(self, reviews: Sequence[Review], *, via: str, claimed: dict[str, Document] | None = None) -> list[str]:
        """Store reviews with one ``insert_many``; per review ``new``, ``duplicate``
        (already known, also within the batch) or ``failed`` (this review could not be
        stored; logged, the others are). With ``claimed``, new reviews are stored claimed
        (processing, with a lease) and added to it by key: no claim write afterwards."""
        if not reviews:
            return []
        now = self.clock.now()
        token = uuid.uuid4().hex if claimed is not None else ""
        result = ["new"] * len(reviews)
        docs: list[Document] = []
        at: list[int] = []  # docs[k] is reviews[at[k]]
        for i, review in enumerate(reviews):
            try:
                docs.append(self._new_doc(review, via, now, token))
                at.append(i)
            except Exception as exc:  # noqa: BLE001 - one review's content
                log.warning("review %s not stored: %s", ref(review.key), type(exc).__name__)
                result[i] = "failed"
        try:
            # ordered=False: every review is tried; one that fails fails alone.
            await self.reviews.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for e in exc.details.get("writeErrors", []):
                i = at[int(e["index"])]
                if e.get("code") == 11000:
                    result[i] = "duplicate"
                else:
                    log.warning("review %s not stored (code %s)", ref(reviews[i].key), e.get("code"))
                    result[i] = "failed"
        except (InvalidDocument, UnicodeEncodeError):
            # The driver refused the batch before sending it: store one by one.
            for k, doc in enumerate(docs):
                result[at[k]] = await self._insert_one(doc)
        if claimed is not None:
            claimed.update((str(d["_id"]), d) for k, d in enumerate(docs) if result[at[k]] == "new")
        return result

    async def _insert_one(self, doc: Document) -> str:
        try:
            await self.reviews.insert_one(doc)
        except DuplicateKeyError:
            return "duplicate"
        except (InvalidDocument, UnicodeEncodeError) as exc:
            log.warning("review %s not stored: %s", ref(str(doc["_id"])), type(exc).__name__)
            return "failed"
        return "new"

    async def ingest_and_process(self, review: Review, *, via: str) -> Outcome:
        return (await self.ingest_and_process_many([review], via=via))[0]

    async def ingest_and_process_many(self, reviews: Sequence[Review], *, via: str) -> list[Outcome]:
        """Store a batch and remedy what was new in it (see :meth:`process_many`)."""
        claimed: dict[str, Document] = {}
        stored = await self.ingest_many(reviews, via=via, claimed=claimed)
        done = await self._process_claimed(claimed)
        return [done[r.key] if st == "new" else Outcome(r.key, st) for r, st in zip(reviews, stored)]

    async def process_new(self, limit: int = 100) -> int:
        """Process reviews left new (webhook pushes, a crashed worker's claims)."""
        now = self.clock.now()
        query = {"status": {"$in": ["new", "processing"]}, "lease_until": {"$not": {"$gte": now}}}
        keys = [str(d["_id"]) async for d in self.reviews.find(query, projection={"_id": 1}).limit(limit)]
        await self.process_many(keys)
        return len(keys)

    # -- processing ----------------------------------------------------------------------
    async def process(self, key: str) -> Outcome:
        return (await self.process_many([key]))[0]

    async def process_many(self, keys: Sequence[str]) -> list[Outcome]:
        """Claim and remedy a batch of stored reviews; one outcome per key, in order.

        Store round trips per batch, not per review: claims and reads in ``$in`` chunks,
        the orders in ``$in`` chunks, the SLA table once, the carrier counters as one
        ``bulk_write``. Each review's remedy (coupon, reply) runs concurrently with the
        others, at most ``concurrency`` at once, and its result is written right after
        its reply (one write), so a crash cannot lose a reply already sent. A review that
        fails for a reason of its own (its data) is ``failed`` alone and logged."""
        if not keys:
            return []
        outcomes = await self._process_claimed(await self._claim(keys))
        return [outcomes.get(k) or Outcome(k, "duplicate") for k in keys]  # someone else has it, or it is done

    async def _process_claimed(self, claimed: Mapping[str, Document]) -> dict[str, Outcome]:
        if not claimed:
            return {}
        batch = _Batch(
            orders=await find_by_ids(self.orders, {o for d in claimed.values() if (o := self._order_of(d))}),
            slas=[d async for d in self.slas.find({})],
        )
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def one(doc: Document) -> Outcome:
            async with sem:
                try:
                    return await self._remedy(doc, batch)
                except Exception as exc:  # noqa: BLE001 - this review's data; the batch goes on
                    log.warning("review %s not processed: %s", ref(str(doc["_id"])), type(exc).__name__)
                    log.debug("review %s not processed", ref(str(doc["_id"])), exc_info=True)
                    await self.reviews.update_one({"_id": doc["_id"]}, {"$set": {"status": "failed", "lease_until": 0}})
                    return Outcome(str(doc["_id"]), "failed")

        outcomes = {o.review: o for o in await asyncio.gather(*(one(d) for d in claimed.values()))}
        if batch.counters:
            await self.stats.bulk_write(
                [UpdateOne({"_id": c}, {"$inc": inc}, upsert=True) for c, inc in batch.counters.items()], ordered=False
            )
        if batch.counters or any(o.status in ("pending", "resolved") for o in outcomes.values()):
            # The counters moved, or a review behind a carrier's figures changed status.
            self.announcer.changed()
        return outcomes

    async def _claim(self, keys: Sequence[str]) -> dict[str, Document]:
        """Claim what is new (or whose claim expired) among ``keys``: new -> processing
        with a lease. No ``$or`` in the filter: the embedded server scans the whole
        collection for a top-level operator, and the ``_id`` list is a point lookup."""
        now = self.clock.now()
        token = uuid.uuid4().hex
        out: dict[str, Document] = {}
        for start in range(0, len(keys), IN_CHUNK):
            chunk = list(dict.fromkeys(keys[start : start + IN_CHUNK]))
            await self.reviews.update_many(
                {"_id": {"$in": chunk}, "status": {"$in": ["new", "processing"]}, "lease_until": {"$not": {"$gte": now}}},
                {"$set": {"status": "processing", "lease_until": now + self.settings.lease_s, "claim": token}},
            )
            async for doc in self.reviews.find({"_id": {"$in": chunk}, "claim": token}):
                out[str(doc["_id"])] = doc
        return out

    def _order_of(self, doc: Mapping[str, Any]) -> str:
        """The order a review's remedy would look up (none for a good review)."""
        if int(doc.get("rating", 5)) > self.settings.bad_rating or doc.get("replied_at"):
            return ""
        return order_id_in(str(doc.get("text", ""))) or str(doc.get("order_id") or "")

    async def _remedy(self, doc: Document, batch: _Batch) -> Outcome:
        key = str(doc["_id"])
        if doc.get("replied_at"):  # replied before a crash that came before "resolved"
            await self.reviews.update_one({"_id": key}, {"$set": {"status": "resolved"}})
            return Outcome(key, "resolved")
        if int(doc.get("rating", 5)) > self.settings.bad_rating or not await self._is_logistics(doc["text"]):
            await self.reviews.update_one({"_id": key}, {"$set": {"status": "ignored", "kind": "other"}})
            return Outcome(key, "ignored")
        complaint = extract(doc["text"], await self._carrier_aliases())
        facts = await self._facts(doc, complaint, batch)
        fields: Document = {"kind": "logistics", **facts, "resolve_by": float(doc["received_at"]) + RESOLVE_WITHIN_S}
        coupon, coupon_failed = await self._coupon(doc, facts)
        fields["coupon"] = coupon
        first_time = "carrier" not in doc
        channel: str | None = None
        if not coupon_failed:  # the message carries the coupon: no reply without it
            text = self.templates.render(
                "review_compensation", str(doc.get("language") or "en"), review=doc, facts=facts, coupon=coupon,
            )
            fields["message"] = text
            channel = await self._reply(doc, text, facts)
        if channel is None:
            fields["status"] = "pending"  # a job tries again; track_overdue flags it at 48 h
            fields["lease_until"] = 0
            fields["attempts"] = int(doc.get("attempts", 0)) + 1
        else:
            fields["status"] = "resolved"
            fields["resolved_at"] = fields["replied_at"] = self.clock.now()
            fields["replied_via"] = channel
        await self.reviews.update_one({"_id": key}, {"$set": fields})
        carrier = facts["carrier"] or "unknown"
        if first_time:
            batch.count(carrier, _counts(facts))
        if fields["status"] == "resolved":
            in_time = fields["resolved_at"] - float(doc["received_at"]) <= RESOLVE_WITHIN_S
            batch.count(carrier, {"resolved": 1, "resolved_48h": int(in_time)})
        return Outcome(key, fields["status"], {"facts": facts, "coupon": coupon, "via": channel})

    async def remedy_chat(self, *, text: str, order_id: str, identity: str, conversation: str, language: str) -> ChatRemedy:
        """The review remedy for a complaint made in chat: look the order up, match the
        carrier's SLA, and on a breach issue the coupon and count it on the carrier
        board. ``identity`` is who is asking (``channel:account:sender``); an order of
        another CRM customer is treated as unknown. Once per order and conversation: asking again repeats the
        remedy, it does not issue a second coupon."""
        complaint = extract(text, await self._carrier_aliases())
        order_id = order_id or complaint.order_id
        if not order_id:
            return ChatRemedy("need_order")
        order = await self.orders.find_one({"_id": order_id})
        crm = await self.customers.find_one({"identities": identity}, {"_id": 1}) if order and order.get("customer") else None
        if order is None or (order.get("customer") and order.get("customer") != (crm or {}).get("_id")):
            return ChatRemedy("unknown_order", order_id)
        key = f"chat:{conversation}:{order_id}"
        known = await self.reviews.find_one({"_id": key})
        if known is not None:
            return ChatRemedy("remedied", order_id, dict(known.get("facts") or {}), known.get("coupon"), repeat=True)
        now = self.clock.now()
        doc: Document = {
            "_id": key, "marketplace": "chat", "review_id": order_id, "rating": 1, "text": text, "order_id": order_id,
            "buyer": "", "region": str(order.get("region") or ""), "language": language, "created_at": now, "received_at": now,
            "via": "chat", "conversation": conversation,
        }
        facts = await self._facts(doc, complaint, _Batch(orders={order_id: order}, slas=[d async for d in self.slas.find({})]))
        if not facts["breach"] and facts["promised_days"] is not None and order.get("shipped_at") and not order.get("delivered_at"):
            return ChatRemedy("not_due", order_id, facts, due_at=float(order["shipped_at"]) + DAY * int(facts["promised_days"]))
        coupon, _ = await self._coupon(doc, facts)
        try:
            await self.reviews.insert_one(
                {**doc, "kind": "logistics", "status": "resolved", "resolved_at": now, "replied_via": "chat", "facts": facts, "coupon": coupon, **facts}
            )
        except DuplicateKeyError:  # the same complaint handled twice at once: one coupon, one count
            return ChatRemedy("remedied", order_id, facts, coupon, repeat=True)
        inc = {**_counts(facts), "resolved": 1, "resolved_48h": 1}
        await self.stats.update_one({"_id": facts["carrier"] or "unknown"}, {"$inc": inc}, upsert=True)
        self.announcer.changed()
        return ChatRemedy("remedied", order_id, facts, coupon)

    async def remedies_in(self, conversation: str, limit: int = 20) -> list[Document]:
        """The remedies given for complaints made in one conversation, oldest first."""
        return [d async for d in self.reviews.find({"conversation": conversation}).sort("created_at", ASCENDING).limit(limit)]

    async def retry_pending(self, limit: int = 50) -> int:
        keys = [str(d["_id"]) async for d in self.reviews.find({"status": "pending"}, projection={"_id": 1}).limit(limit)]
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            await self.reviews.update_many({"_id": {"$in": chunk}, "status": "pending"}, {"$set": {"status": "new", "lease_until": 0}})
        await self.process_many(keys)
        return len(keys)

    async def track_overdue(self) -> int:
        """Flag logistics reviews not resolved 48 h after they arrived."""
        res = await self.reviews.update_many(
            {"resolve_by": {"$lt": self.clock.now()}, "status": {"$in": ["pending", "processing"]}, "overdue": {"$ne": True}},
            {"$set": {"overdue": True, "attention": {"reason": "not resolved within 48 h", "at": self.clock.now()}}},
        )
        if res.modified_count:
            self.announcer.changed()  # the reviews behind a carrier's figures show the flag
        return res.modified_count

    async def _is_logistics(self, text: str) -> bool:
        if is_logistics(text):
            return True
        if self.nlu is None:
            return False
        try:
            parsed = await self.nlu.parse(text)
        except Exception as exc:  # the rules already had their say; NLU is the extra net
            log.info("review NLU unavailable: %s", exc)
            return False
        return bool(parsed.intent == "complain_logistics")

    async def _carrier_aliases(self) -> dict[str, str]:
        if self._aliases is None:
            aliases: dict[str, str] = {}
            async for sla in self.slas.find({}, projection={"carrier": 1, "names": 1}):
                for name in [sla["carrier"], *sla.get("names", [])]:
                    aliases[str(name).lower()] = str(sla["carrier"])
            self._aliases = aliases
        return self._aliases

    async def _facts(self, doc: Mapping[str, Any], c: Complaint, batch: _Batch) -> Document:
        order_id = c.order_id or str(doc.get("order_id") or "")
        order = batch.orders.get(order_id) if order_id else None
        carrier = c.carrier or str((order or {}).get("carrier", ""))
        region = str((order or {}).get("region") or doc.get("region") or "")
        sla = batch.sla(carrier, region) if carrier else None
        promised = int(sla["promised_days"]) if sla else None
        taken = c.days_taken
        if order and order.get("shipped_at"):
            end = float(order.get("delivered_at") or self.clock.now())
            taken = int((end - float(order["shipped_at"])) // DAY)
        if c.days_late is not None:
            late = c.days_late
        elif taken is not None and promised is not None:
            late = max(0, taken - promised)
        else:
            late = None
        policy = (sla or {}).get("compensation") or {}
        breach = late is not None and late > 0
        if breach and policy:
            amount = min(float(policy.get("max", 0)), float(policy.get("per_day", 0)) * float(late or 0))
        elif late is None and policy:
            amount = float(policy.get("per_day", 0))  # delay unknown: a goodwill day's worth
        else:
            amount = 0.0
        return {
            "order_id": order_id, "carrier": carrier or "", "region": region, "promised_days": promised, "days_taken": taken,
            "days_late": late, "breach": breach, "compensation": amount, "currency": str(policy.get("currency", "CNY")),
            "customer": (order or {}).get("customer"),
        }

    async def _coupon(self, doc: Mapping[str, Any], facts: Mapping[str, Any]) -> tuple[Document | None, bool]:
        """The coupon (None: none due, or no coupon system) and whether issuing failed."""
        if facts["compensation"] <= 0:
            return None, False
        coupons = self.connectors.get("coupons", CouponConnector)
        if coupons is None:
            return None, False
        try:
            c = await coupons.issue(
                customer=str(doc.get("buyer") or doc["_id"]), amount=float(facts["compensation"]), currency=str(facts["currency"]),
                reason=f"late delivery {facts.get('order_id', '')}", idempotency_key=f"review:{doc['_id']}",
            )
        except ConnectorError as exc:
            log.warning("coupon for review %s failed: %s", doc["_id"], exc)
            return None, True
        return {"code": c.code, "amount": c.amount, "currency": c.currency, "expires": c.expires}, False

    async def _reply(self, doc: Mapping[str, Any], text: str, facts: Mapping[str, Any]) -> str | None:
        """Where the answer went: the marketplace, the customer's channel, or None (later)."""
        market = self.marketplace(str(doc["marketplace"]))
        if market is not None:
            try:
                await market.reply(str(doc["review_id"]), text)
                return "marketplace"
            except ConnectorError as exc:
                log.warning("reply to review %s on %s failed: %s", doc["_id"], doc["marketplace"], exc)
        customer = await self.customers.find_one({"_id": facts["customer"]}) if facts.get("customer") else None
        for identity in (customer or {}).get("identities", []):
            channel, _, rest = str(identity).partition(":")
            account, _, sender = rest.partition(":")
            cid = await self.notifier.customer(channel, account, sender, str(doc.get("language") or "zh"))
            title = self.templates.render("review_title", str(doc.get("language") or "en"))
            decision = await self.notifier.notify(
                Notification(cid, Topic.REVIEW, Importance.HIGH, {"title": title, "text": text}, key=f"review:{doc['_id']}")
            )
            if decision is not None:
                return f"notify:{decision.action.value}"
        return None

    # -- console ---------------------------------------------------------------------------
    async def carrier_performance(self) -> list[Document]:
        """Per carrier: breach rate, average delay (days), share resolved within 48 h."""
        out: list[Document] = []
        async for s in self.stats.find({}).sort("_id", ASCENDING):
            n = int(s.get("logistics_reviews", 0))
            out.append({
                "carrier": s["_id"], "logistics_reviews": n,
                "breach_rate": round(int(s.get("breaches", 0)) / n, 3) if n else 0.0,
                "avg_delay_days": round(int(s.get("delay_days", 0)) / int(s["delay_known"]), 2) if s.get("delay_known") else None,
                "resolved_48h_rate": round(int(s.get("resolved_48h", 0)) / n, 3) if n else 0.0,
            })
        return out

    async def carrier_weeks(self, since: float) -> dict[str, list[Document]]:
        """Per carrier, per week (Monday 00:00 UTC) since ``since``: logistics reviews,
        breaches, average delay and share resolved within 48 h."""
        weeks: dict[tuple[str, float], Document] = {}
        query = {"kind": "logistics", "received_at": {"$gte": since}}
        fields = {"carrier": 1, "received_at": 1, "breach": 1, "days_late": 1, "resolved_at": 1}
        async for r in self.reviews.find(query, projection=fields):
            # 1970-01-01 was a Thursday: shift by 3 days so weeks start on Monday.
            week = (float(r["received_at"]) + 3 * 86_400) // (7 * 86_400) * (7 * 86_400) - 3 * 86_400
            w = weeks.setdefault((str(r.get("carrier") or "unknown"), week), {"week": week, "n": 0, "breaches": 0, "late": 0, "known": 0, "in_48h": 0})
            w["n"] += 1
            w["breaches"] += int(bool(r.get("breach")))
            if r.get("days_late") is not None:
                w["late"] += int(r["days_late"])
                w["known"] += 1
            if r.get("resolved_at") and float(r["resolved_at"]) - float(r["received_at"]) <= RESOLVE_WITHIN_S:
                w["in_48h"] += 1
        out: dict[str, list[Document]] = {}
        for (carrier, _), w in sorted(weeks.items(), key=lambda kv: kv[0]):
            out.setdefault(carrier, []).append({
                "week": w["week"], "reviews": w["n"], "breach_rate": round(w["breaches"] / w["n"], 3),
                "avg_delay_days": round(w["late"] / w["known"], 2) if w["known"] else None, "resolved_48h_rate": round(w["in_48h"] / w["n"], 3),
            })
        return out

    async def reviews_of(self, carrier: str, limit: int = 50) -> list[Document]:
        """The logistics reviews behind a carrier's figures, newest first."""
        fields = {"text": 1, "rating": 1, "marketplace": 1, "order_id": 1, "received_at": 1, "breach": 1, "days_late": 1, "status": 1,
                  "resolved_at": 1, "overdue": 1}
        # The counters file a review whose carrier is not known under "unknown"; the review
        # itself keeps an empty carrier.
        which: Any = {"$in": ["", UNKNOWN]} if carrier == UNKNOWN else carrier
        cursor = self.reviews.find({"kind": "logistics", "carrier": which}, projection=fields).sort("received_at", -1).limit(limit)
        return [d async for d in cursor]

    # -- pulls -------------------------------------------------------------------------------
    async def pull(self, name: str, limit: int = 100) -> int:
        """Pull new reviews from one marketplace after the persisted cursor."""
        market = self.marketplace(name)
        if market is None:
            return 0
        lease = f"kefu:reviews:pull:{name}"
        if not await self.redis.set(lease, "1", nx=True, px=int(self.settings.lease_s * 1000)):
            return 0
        try:
            state = await self.cursors.find_one({"_id": name}) or {}
            cursor = str(state.get("cursor", ""))
            total = 0
            while True:
                reviews, nxt = await market.pull(cursor, limit)
                await self.ingest_and_process_many(reviews, via="pull")
                total += len(reviews)
                # Saved after the page is ingested: a crash re-pulls the page, and ingest
                # recognises every review in it.
                await self.cursors.update_one({"_id": name}, {"$set": {"cursor": nxt, "at": self.clock.now()}}, upsert=True)
                if not reviews or nxt == cursor:
                    return total
                cursor = nxt
        finally:
            await self.redis.delete(lease)

    async def pull_all(self) -> int:
        total = 0
        for name in MARKETPLACES:
            try:
                total += await self.pull(name)
            except ConnectorError as exc:
                log.warning("pulling %s reviews failed: %s", name, exc)
        return total


def review_from_row(row: Mapping[str, str], marketplaces: Sequence[str] = MARKETPLACES) -> Review:
    """One CSV row (``marketplace, review_id, rating, text, order_id, buyer, region, language``)."""
    market = (row.get("marketplace") or "").strip().lower()
    if market not in marketplaces:
        raise ValueError(f"marketplace: one of {', '.join(marketplaces)} (got {market!r})")
    rid = (row.get("review_id") or "").strip()
    if not rid:
        raise ValueError("review_id is required")
    return Review(
        market, rid, int(row.get("rating") or 0), row.get("text") or "", order_id=(row.get("order_id") or "").strip(),
        buyer=row.get("buyer") or "", region=(row.get("region") or "").strip().upper(), language=(row.get("language") or "").strip(),
        created_at=time.time(),
    )


def _counts(facts: Mapping[str, Any]) -> Document:
    """A logistics review's share of its carrier's counters."""
    inc: Document = {"logistics_reviews": 1, "breaches": int(bool(facts["breach"]))}
    if facts.get("days_late") is not None:
        inc["delay_known"] = 1
        inc["delay_days"] = int(facts["days_late"])
    return inc


@dataclass
class _Batch:
    """What a batch of reviews reads once: their orders, the SLA table; and the carrier
    counters it adds up, written once at its end."""

    orders: Mapping[str, Document]
    slas: list[Document]
    counters: dict[str, Document] = field(default_factory=dict)

    def sla(self, carrier: str, region: str) -> Document | None:
        """The carrier's SLA for the region, else its first one."""
        mine = [s for s in self.slas if s.get("carrier") == carrier]
        return next((s for s in mine if region and s.get("region") == region), mine[0] if mine else None)

    def count(self, carrier: str, inc: Mapping[str, int]) -> None:
        mine = self.counters.setdefault(carrier, {})
        for k, v in inc.items():
            mine[k] = mine.get(k, 0) + v
