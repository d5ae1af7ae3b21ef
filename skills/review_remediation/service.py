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

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from bot.language import detect
from bot.mongo import Document, update_and_get
from bot.templates import Templates
from preferences.clock import Clock, SystemClock
from preferences.model import Importance, Notification, Topic
from skills.connectors.base import ConnectorError
from skills.connectors.coupons import CouponConnector
from skills.connectors.marketplace import MarketplaceConnector, Review
from skills.connectors.registry import Connectors
from skills.notifier import Notifier
from skills.review_remediation.detect import Complaint, extract, is_logistics

log = logging.getLogger(__name__)

DAY = 86_400.0
RESOLVE_WITHIN_S = 48 * 3600.0
MARKETPLACES = ("amazon", "shopee", "temu")


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """``reviews:`` in kefu.yml."""

    bad_rating: int = 3  # this many stars or fewer is a bad review
    lease_s: float = 120.0
    min_compensation: float = 0.0

    @classmethod
    def from_section(cls, s: Mapping[str, Any]) -> ReviewSettings:
        return cls(bad_rating=int(s.get("bad_rating", 3)), lease_s=float(s.get("lease_s", 120.0)))


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

    async def ensure_indexes(self) -> None:
        await self.reviews.create_indexes(
            [IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]), IndexModel([("carrier", ASCENDING)]),
             IndexModel([("resolve_by", ASCENDING)]), IndexModel([("conversation", ASCENDING)], sparse=True)]
        )
        await self.slas.create_indexes([IndexModel([("carrier", ASCENDING), ("region", ASCENDING)])])

    def marketplace(self, name: str) -> MarketplaceConnector | None:
        return self.connectors.get(name, MarketplaceConnector)

    # -- ingest ----------------------------------------------------------------------------
    async def ingest(self, review: Review, *, via: str) -> bool:
        """Store a review; False when it was already known (nothing else happens then)."""
        now = self.clock.now()
        doc: Document = {
            "_id": review.key, "marketplace": review.marketplace, "review_id": review.review_id, "rating": review.rating,
            "text": review.text, "order_id": review.order_id, "buyer": review.buyer, "region": review.region,
            "language": review.language or detect(review.text, "en"), "created_at": review.created_at or now,
            "received_at": now, "via": via, "status": "new",
        }
        try:
            await self.reviews.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def ingest_and_process(self, review: Review, *, via: str) -> Outcome:
        if not await self.ingest(review, via=via):
            return Outcome(review.key, "duplicate")
        return await self.process(review.key)

    async def process_new(self, limit: int = 100) -> int:
        """Process reviews left new (webhook pushes, a crashed worker's claims)."""
        n = 0
        now = self.clock.now()
        query = {"$or": [{"status": "new"}, {"status": "processing", "lease_until": {"$lt": now}}]}
        async for doc in self.reviews.find(query, projection={"_id": 1}).limit(limit):
            await self.process(str(doc["_id"]))
            n += 1
        return n

    # -- processing ----------------------------------------------------------------------
    async def process(self, key: str) -> Outcome:
        now = self.clock.now()
        doc = await update_and_get(
            self.reviews, {"_id": key, "$or": [{"status": "new"}, {"status": "processing", "lease_until": {"$lt": now}}]},
            {"$set": {"status": "processing", "lease_until": now + self.settings.lease_s}},
        )
        if doc is None:
            return Outcome(key, "duplicate")  # someone else has it, or it is done
        if doc.get("replied_at"):  # replied before a crash that came before "resolved"
            await self.reviews.update_one({"_id": key}, {"$set": {"status": "resolved"}})
            return Outcome(key, "resolved")
        if int(doc.get("rating", 5)) > self.settings.bad_rating or not await self._is_logistics(doc["text"]):
            await self.reviews.update_one({"_id": key}, {"$set": {"status": "ignored", "kind": "other"}})
            return Outcome(key, "ignored")
        complaint = extract(doc["text"], await self._carrier_aliases())
        facts = await self._facts(doc, complaint)
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
            fields["resolved_at"] = self.clock.now()
            fields["replied_via"] = channel
        await self.reviews.update_one({"_id": key}, {"$set": fields})
        if first_time:
            await self._count(facts, doc)
        if fields["status"] == "resolved":
            in_time = fields["resolved_at"] - float(doc["received_at"]) <= RESOLVE_WITHIN_S
            await self.stats.update_one({"_id": facts["carrier"] or "unknown"}, {"$inc": {"resolved": 1, "resolved_48h": int(in_time)}}, upsert=True)
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
        facts = await self._facts(doc, complaint)
        if not facts["breach"] and facts["promised_days"] is not None and order.get("shipped_at") and not order.get("delivered_at"):
            return ChatRemedy("not_due", order_id, facts, due_at=float(order["shipped_at"]) + DAY * int(facts["promised_days"]))
        coupon, _ = await self._coupon(doc, facts)
        try:
            await self.reviews.insert_one(
                {**doc, "kind": "logistics", "status": "resolved", "resolved_at": now, "replied_via": "chat", "facts": facts, "coupon": coupon, **facts}
            )
        except DuplicateKeyError:  # the same complaint handled twice at once: one coupon, one count
            return ChatRemedy("remedied", order_id, facts, coupon, repeat=True)
        await self._count(facts, doc)
        await self.stats.update_one({"_id": facts["carrier"] or "unknown"}, {"$inc": {"resolved": 1, "resolved_48h": 1}}, upsert=True)
        return ChatRemedy("remedied", order_id, facts, coupon)

    async def remedies_in(self, conversation: str, limit: int = 20) -> list[Document]:
        """The remedies given for complaints made in one conversation, oldest first."""
        return [d async for d in self.reviews.find({"conversation": conversation}).sort("created_at", ASCENDING).limit(limit)]

    async def retry_pending(self, limit: int = 50) -> int:
        n = 0
        async for doc in self.reviews.find({"status": "pending"}, projection={"_id": 1}).limit(limit):
            await self.reviews.update_one({"_id": doc["_id"], "status": "pending"}, {"$set": {"status": "new"}})
            await self.process(str(doc["_id"]))
            n += 1
        return n

    async def track_overdue(self) -> int:
        """Flag logistics reviews not resolved 48 h after they arrived."""
        res = await self.reviews.update_many(
            {"resolve_by": {"$lt": self.clock.now()}, "status": {"$in": ["pending", "processing"]}, "overdue": {"$ne": True}},
            {"$set": {"overdue": True, "attention": {"reason": "not resolved within 48 h", "at": self.clock.now()}}},
        )
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

    async def _facts(self, doc: Mapping[str, Any], c: Complaint) -> Document:
        order_id = c.order_id or str(doc.get("order_id") or "")
        order = await self.orders.find_one({"_id": order_id}) if order_id else None
        carrier = c.carrier or str((order or {}).get("carrier", ""))
        region = str((order or {}).get("region") or doc.get("region") or "")
        sla = None
        if carrier:
            sla = await self.slas.find_one({"carrier": carrier, "region": region}) if region else None
            sla = sla or await self.slas.find_one({"carrier": carrier})
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
                await self.reviews.update_one({"_id": doc["_id"]}, {"$set": {"replied_at": self.clock.now()}})
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
                await self.reviews.update_one({"_id": doc["_id"]}, {"$set": {"replied_at": self.clock.now()}})
                return f"notify:{decision.action.value}"
        return None

    async def _count(self, facts: Mapping[str, Any], doc: Mapping[str, Any]) -> None:
        inc: Document = {"logistics_reviews": 1, "breaches": int(bool(facts["breach"]))}
        if facts.get("days_late") is not None:
            inc["delay_known"] = 1
            inc["delay_days"] = int(facts["days_late"])
        await self.stats.update_one({"_id": facts["carrier"] or "unknown"}, {"$inc": inc}, upsert=True)

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
        cursor = self.reviews.find({"kind": "logistics", "carrier": carrier}, projection=fields).sort("received_at", -1).limit(limit)
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
                for review in reviews:
                    await self.ingest_and_process(review, via="pull")
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
