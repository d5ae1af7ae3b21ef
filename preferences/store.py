"""Customers' settings, their history, consents and the marketers' layers in MongoDB.

Collections:

``pref_customers``
    ``{_id: customer_id, profile: {...}, settings: <own layer>, segments: [...],
    consents_active: [...], version: n, created_at, updated_at}``
``pref_layers``
    the marketers' layers: ``_id`` ``"default"`` or ``"segment:<name>"``, with
    ``settings`` and ``version``.
``pref_history``
    one record per change of any of the above: ``{subject, version, at, actor, via,
    old, new, note}``; ``old``/``new`` are whole layers, so a rollback is a copy.
``pref_consents``
    one record per consent given or withdrawn: what, when, how (channel, wording shown).

Every write of a layer is a compare-and-set on ``version``, so two concurrent changes
cannot both win and the history stays a straight line.

With Redis, every write of a customer record is also noted in ``kefu:prefs:changed``
(a sorted set: customer -> wall time of the latest write, noted before and after it).
A copy of a customer record taken at time T (the digests carry one, see
:mod:`preferences.engine`) is known current when the customer has no note after
``T - CHANGE_MARGIN_S`` and the notes reach back before T (``kefu:prefs:changed:since``;
a Redis that lost them makes every copy suspect, so MongoDB is read instead).

With Redis, every write of a marketers' layer (an edit or a rollback) is announced on
:data:`LAYERS_CHANGED` (one publish per burst, never awaited): the console's digest
schedule shows the defaults' digest times.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.asyncio import Redis

from bot.announce import Announcer
from bot.mongo import IN_CHUNK, Document, find_by_ids, update_and_get
from preferences.clock import Clock, SystemClock
from preferences.errors import ConcurrentChange, CustomersOwnChoice, InvalidPreference, UnknownCustomer, UnknownVersion
from bot.store import channel_identity
from preferences.model import BUILTIN_BOOK, ChannelBook, JsonDict, Preferences, merge, resolve, validate_layer
from preferences.provenance import diff, flatten, is_customers_own, revert_patch
from preferences.segment_samples import SegmentSamples


DEFAULT_LAYER = "default"
VIA = ("chat", "console", "api", "system", "portal")
_LAYER_CACHE_S = 5.0  # marketers' layers change rarely; notify() reads them a lot
# What effective_of() reads of a customer record (the profile can be large).
PREF_FIELDS = ("settings", "segments", "consents_active")
CHANGED_KEY = "kefu:prefs:changed"
CHANGED_SINCE_KEY = "kefu:prefs:changed:since"
#: Announced after a marketers' layer is written.
LAYERS_CHANGED = "kefu:prefs:layers:changed"
# A write noted this long before a copy was taken still makes the copy suspect: it covers
# a write that was noted, then took a while to land in MongoDB.
CHANGE_MARGIN_S = 60.0
# Notes older than this are dropped; copies older than this are never trusted.
CHANGE_KEEP_S = 14 * 86_400.0


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer for :meth:`PreferenceStore.create_many`."""

    customer_id: str
    settings: Mapping[str, Any]
    actor: str
    profile: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    segments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatAddress:
    """Who wrote from where, for :meth:`PreferenceStore.customers_for`."""

    channel: str
    account: str
    sender: str
    conversation: str = ""
    language: str = "zh"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.channel, self.account, self.sender)


def _history_doc(subject: str, version: int, at: float, actor: str, via: str, old: JsonDict, new: JsonDict, note: str) -> Document:
    return {"_id": f"{subject}#{version}", "subject": subject, "version": version, "at": at, "actor": actor, "via": via,
            "old": old, "new": new, "note": note}


async def _insert_new(coll: Any, docs: list[Document]) -> set[str]:
    """Insert the documents whose ``_id`` is new (one ``insert_many``); returns their ids."""
    created = {str(d["_id"]) for d in docs}
    if not docs:
        return created
    try:
        await coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        for err in exc.details.get("writeErrors", []):
            if err.get("code") != 11000:
                raise
            created.discard(str(docs[err["index"]]["_id"]))
    return created


def segment_layer(name: str) -> str:
    return f"segment:{name}"


class PreferenceStore:
    """Reads and versioned writes of preferences; the single writer of these collections."""

    def __init__(
        self, db: AsyncDatabase[Document], clock: Clock | None = None, *, redis: Redis | None = None, book: ChannelBook = BUILTIN_BOOK
    ) -> None:
        self.db = db
        self.book = book
        self.clock = clock or SystemClock()
        self.redis = redis
        self.customers = db["pref_customers"]
        self.layers = db["pref_layers"]
        self.history = db["pref_history"]
        self.consents = db["pref_consents"]
        self.segment_samples = SegmentSamples(db, self.customers, lambda: self.clock.now(), redis=redis)
        self._layer_cache: dict[str, tuple[float, JsonDict]] = {}
        self.layers_announcer = Announcer(redis, LAYERS_CHANGED) if redis is not None else None

    async def ensure_indexes(self) -> None:
        await self.history.create_indexes([IndexModel([("subject", ASCENDING), ("version", DESCENDING)])])
        await self.consents.create_indexes([IndexModel([("customer", ASCENDING), ("at", DESCENDING)])])
        await self.customers.create_indexes(
            [IndexModel([(f"settings.addresses.{name}.{cls.recipient_field}", ASCENDING)]) for name, cls in self.book.classes.items()]
            # The console's customer search: name prefix, phone, segment.
            + [IndexModel([("profile.name", ASCENDING)]), IndexModel([("profile.phone", ASCENDING)]), IndexModel([("segments", ASCENDING)])]
        )

    # -- change notes ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _changing(self, customer_id: str | None) -> AsyncIterator[None]:
        """Around a write of a customer record: noted before (a crash mid-write leaves the
        note) and after (the note is not older than the write)."""
        await self._note_change(customer_id)
        yield
        await self._note_change(customer_id)

    async def _note_change(self, customer_id: str | None) -> None:
        if self.redis is None or customer_id is None:
            return
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(CHANGED_SINCE_KEY, now, nx=True)
            pipe.zadd(CHANGED_KEY, {customer_id: now})
            pipe.zremrangebyscore(CHANGED_KEY, "-inf", now - CHANGE_KEEP_S)
            await pipe.execute()

    async def unchanged_since(self, copies: list[tuple[str, float]]) -> list[bool]:
        """For (customer, wall time a copy of its record was read): is the copy current?"""
        if self.redis is None or not copies:
            return [False] * len(copies)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(CHANGED_SINCE_KEY)
            pipe.zmscore(CHANGED_KEY, [c for c, _ in copies])
            since_raw, scores = await pipe.execute()
        now = time.time()
        if since_raw is None:
            # Never noted anything, or Redis lost the notes: from now on they are complete.
            await self.redis.set(CHANGED_SINCE_KEY, now, nx=True)
            return [False] * len(copies)
        since = float(since_raw)
        return [
            taken > now - CHANGE_KEEP_S and since < taken - CHANGE_MARGIN_S and (score is None or score < taken - CHANGE_MARGIN_S)
            for (_, taken), score in zip(copies, scores)
        ]

    # -- customers ---------------------------------------------------------------------
    async def get(self, customer_id: str) -> Document:
        doc = await self.customers.find_one({"_id": customer_id})
        if doc is None:
            raise UnknownCustomer(f"unknown customer {customer_id!r}")
        return doc

    async def exists(self, customer_id: str) -> bool:
        return await self.customers.count_documents({"_id": customer_id}, limit=1) > 0

    async def create(
        self,
        customer_id: str,
        *,
        profile: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        segments: list[str] | None = None,
        actor: str = "system",
        via: str = "api",
    ) -> bool:
        """Create the customer if new (settings recorded as version 1); False if it existed."""
        new = NewCustomer(customer_id, settings or {}, actor, profile or {}, tuple(segments or ()))
        return customer_id in await self.create_many([new], via=via)

    async def create_many(self, new: Sequence[NewCustomer], *, via: str) -> set[str]:
        """Create the customers that do not exist yet, with one ``insert_many`` for the
        records and one for their first history entries; returns the ids created.

        Raises:
            InvalidPreference: a customer's settings are invalid (nothing is created).
        """
        now = self.clock.now()
        docs: list[Document] = [
            {"_id": c.customer_id, "profile": dict(c.profile), "settings": validate_layer(c.settings, self.book),
             "segments": list(c.segments), "consents_active": [], "version": 1, "created_at": now, "updated_at": now}
            for c in new
        ]
        created = await _insert_new(self.customers, docs)
        joined: dict[str, list[str]] = {}
        for d in docs:
            if d["_id"] in created:
                for seg in d["segments"]:
                    joined.setdefault(seg, []).append(d["_id"])
        if joined:
            await self.segment_samples.changed(joined, {})
        actors = {c.customer_id: c.actor for c in new}
        await _insert_new(self.history, [
            _history_doc(d["_id"], 1, now, actors[d["_id"]], via, {}, d["settings"], "created") for d in docs if d["_id"] in created
        ])
        return created

    async def update_profile(self, customer_id: str, profile: Mapping[str, Any], segments: list[str] | None) -> None:
        fields: Document = {f"profile.{k}": v for k, v in profile.items()}
        if segments is not None:
            fields["segments"] = list(segments)
        if not fields:
            return
        async with self._changing(customer_id):
            before = await self.customers.find_one_and_update({"_id": customer_id}, {"$set": fields}, projection={"segments": 1})
        if before is None:
            raise UnknownCustomer(f"unknown customer {customer_id!r}")
        if segments is not None:
            old, new = set(before.get("segments") or ()), set(segments)
            await self.segment_samples.changed({s: [customer_id] for s in new - old}, {s: [customer_id] for s in old - new})

    async def find_by_address(self, channel: str, account: str, recipient: str) -> str | None:
        """The customer whose address on ``channel`` is ``recipient`` (and ``account``)."""
        field = self.book.recipient_field(channel)
        if field is None:
            return None
        query: Document = {f"settings.addresses.{channel}.{field}": recipient}
        if account:
            query[f"settings.addresses.{channel}.account"] = account
        doc = await self.customers.find_one(query, projection={"_id": 1})
        return None if doc is None else str(doc["_id"])

    async def customer_for(
        self, channel: str, account: str, sender: str, *, conversation: str = "", language: str, actor: str | None, via: str
    ) -> str:
        """The customer writing from ``sender`` on a channel account, created on first
        contact with that address so that proactive messages can reach them.

        ``actor`` is recorded in the history; ``None`` records the customer themself."""
        found = await self.customers_for([ChatAddress(channel, account, sender, conversation, language)], actor=actor, via=via)
        return found[(channel, account, sender)]

    async def customers_for(
        self, addresses: Sequence[ChatAddress], *, actor: str | None, via: str
    ) -> dict[tuple[str, str, str], str]:
        """:meth:`customer_for` for many chat addresses at once, by (channel, account,
        sender): the addresses looked up in ``$in`` chunks per channel, the new customers
        created with one :meth:`create_many`."""
        out: dict[tuple[str, str, str], str] = {}
        missing: dict[str, NewCustomer] = {}
        by_channel: dict[str, list[ChatAddress]] = {}
        for a in addresses:
            if a.channel in self.book.classes:
                by_channel.setdefault(a.channel, []).append(a)
            else:
                out[a.key] = channel_identity(a.channel, a.account, a.sender)
        for channel, wanted in by_channel.items():
            cls = self.book.classes[channel]
            field = cls.recipient_field
            senders = sorted({a.sender for a in wanted})
            holders: dict[str, list[tuple[str, str]]] = {}  # sender -> [(account, customer)]
            for i in range(0, len(senders), IN_CHUNK):
                query = {f"settings.addresses.{channel}.{field}": {"$in": senders[i : i + IN_CHUNK]}}
                async for doc in self.customers.find(query, projection={f"settings.addresses.{channel}": 1}):
                    addr = doc["settings"]["addresses"][channel]
                    holders.setdefault(str(addr[field]), []).append((str(addr.get("account", "")), str(doc["_id"])))
            for a in wanted:
                hit = next((cid for acc, cid in holders.get(a.sender, ()) if not a.account or acc == a.account), None)
                if hit is not None:
                    out[a.key] = hit
                    continue
                cid = out[a.key] = channel_identity(channel, a.account, a.sender)
                settings = {"addresses": {channel: {"account": a.account, **cls.address_of(a.sender, a.conversation)}}, "language": a.language}
                missing.setdefault(cid, NewCustomer(cid, settings, actor or cid))
        if missing:
            await self.create_many(list(missing.values()), via=via)
        return out

    async def records(self, customer_ids: set[str]) -> dict[str, Document]:
        """Several customers' records, with what :meth:`effective_of` reads; unknown ids
        are left out."""
        found = await find_by_ids(self.customers, customer_ids, projection={f: 1 for f in PREF_FIELDS})
        return {str(k): v for k, v in found.items()}

    async def effective(self, customer_id: str) -> Preferences:
        """The customer's preferences with defaults, segments and own choices merged."""
        doc = await self.get(customer_id)
        return await self.effective_of(doc)

    async def effective_of(self, doc: Mapping[str, Any]) -> Preferences:
        layers: list[Mapping[str, Any]] = [await self._layer(DEFAULT_LAYER)]
        for seg in doc.get("segments") or ():
            layers.append(await self._layer(segment_layer(str(seg))))
        layers.append(doc.get("settings") or {})
        return resolve(str(doc["_id"]), layers, frozenset(doc.get("consents_active") or ()), self.book)

    async def effective_layer(self, customer_id: str) -> JsonDict:
        """The merged settings as JSON (what a customer sees as 'my settings')."""
        doc = await self.get(customer_id)
        merged: JsonDict = dict(self.book.defaults)
        merged = merge(merged, await self._layer(DEFAULT_LAYER))
        for seg in doc.get("segments") or ():
            merged = merge(merged, await self._layer(segment_layer(str(seg))))
        return merge(merged, doc.get("settings") or {})

    # -- versioned changes ---------------------------------------------------------------
    async def change(
        self,
        customer_id: str,
        update: Mapping[str, Any],
        *,
        actor: str,
        via: str,
        replace: bool = False,
        note: str = "",
    ) -> int:
        """Apply a patch (or replace the whole own layer) and record it; returns the version."""
        patch = validate_layer(update, self.book)
        return await self._change(
            self.customers, customer_id, lambda old: patch if replace else merge(old, patch), actor, via, note
        )

    async def rollback(self, subject: str, version: int, *, actor: str, via: str) -> int:
        """Restore the layer as it was right after ``version``; recorded as a new version."""
        rec = await self.history.find_one({"subject": subject, "version": version})
        if rec is None:
            raise UnknownVersion(f"{subject!r} has no version {version}")
        target: JsonDict = dict(rec["new"])
        coll = self.layers if subject == DEFAULT_LAYER or subject.startswith("segment:") else self.customers
        return await self._change(coll, subject, lambda _old: target, actor, via, f"rollback to {version}")

    async def list_history(self, subject: str, limit: int = 100) -> list[Document]:
        cursor = self.history.find({"subject": subject}, projection={"_id": 0}).sort("version", DESCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def _change(
        self,
        coll: Any,
        subject: str,
        compute: Callable[[JsonDict], JsonDict],
        actor: str,
        via: str,
        note: str,
    ) -> int:
        if via not in VIA:
            raise InvalidPreference(f"via: expected one of {', '.join(VIA)}", field="via")
        for _ in range(5):
            doc = await coll.find_one({"_id": subject})
            if doc is None:
                raise UnknownCustomer(f"unknown customer {subject!r}")
            old: JsonDict = dict(doc.get("settings") or {})
            new = validate_layer(compute(old), self.book)
            version = int(doc.get("version", 0))
            async with self._changing(subject if coll is self.customers else None):
                res = await update_and_get(
                    coll, {"_id": subject, "version": version},
                    {"$set": {"settings": new, "version": version + 1, "updated_at": self.clock.now()}},
                )
            if res is None:
                continue  # lost a race; read again
            await self._record(subject, version + 1, old, new, actor, via, note)
            self._layer_cache.pop(subject, None)
            if coll is self.layers and self.layers_announcer is not None:
                self.layers_announcer.changed()
            return version + 1
        raise ConcurrentChange(f"{subject!r} is being changed concurrently; try again")

    async def _record(self, subject: str, version: int, old: JsonDict, new: JsonDict, actor: str, via: str, note: str) -> None:
        doc = _history_doc(subject, version, self.clock.now(), actor, via, old, new, note)
        await self.history.update_one({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True)

    # -- marketers' layers -----------------------------------------------------------------
    async def put_layer(self, name: str, settings: Mapping[str, Any], *, actor: str, via: str = "api") -> int:
        """Replace the global default (``"default"``) or a segment's layer; versioned."""
        layer = validate_layer(settings, self.book)
        if "addresses" in layer:
            raise InvalidPreference("addresses: not allowed in defaults or segments", field="addresses")
        try:
            await self.layers.insert_one({"_id": name, "settings": {}, "version": 0})
        except DuplicateKeyError:
            pass
        return await self._change(self.layers, name, lambda _old: layer, actor, via, "")

    async def get_layer(self, name: str) -> JsonDict:
        doc = await self.layers.find_one({"_id": name})
        return {} if doc is None else dict(doc.get("settings") or {})

    async def list_layers(self) -> list[Document]:
        return [doc async for doc in self.layers.find({}, projection={"settings": 1, "version": 1})]

    async def _layer(self, name: str) -> JsonDict:
        now = time.monotonic()
        hit = self._layer_cache.get(name)
        if hit is not None and now - hit[0] < _LAYER_CACHE_S:
            return hit[1]
        layer = await self.get_layer(name)
        self._layer_cache[name] = (now, layer)
        return layer

    # -- consents ----------------------------------------------------------------------------
    async def record_consent(
        self,
        customer_id: str,
        scope: str,
        granted: bool,
        *,
        via: str,
        actor: str,
        evidence: str = "",
    ) -> Document:
        """Record consent given or withdrawn for ``scope`` (e.g. ``marketing``).

        ``evidence`` says how it was given: the wording shown, the form, the message id.
        """
        if via not in VIA:
            raise InvalidPreference(f"via: expected one of {', '.join(VIA)}", field="via")
        if not scope or not scope.isidentifier():
            raise InvalidPreference("scope: expected a name like 'marketing'", field="scope")
        await self.get(customer_id)
        rec: Document = {
            "_id": uuid.uuid4().hex,
            "customer": customer_id,
            "scope": scope,
            "granted": granted,
            "at": self.clock.now(),
            "via": via,
            "actor": actor,
            "evidence": evidence,
        }
        await self.consents.insert_one(rec)
        op = "$addToSet" if granted else "$pull"
        async with self._changing(customer_id):
            await self.customers.update_one({"_id": customer_id}, {op: {"consents_active": scope}})
        return rec

    async def list_consents(self, customer_id: str) -> list[Document]:
        cursor = self.consents.find({"customer": customer_id}).sort("at", DESCENDING)
        return [doc async for doc in cursor]

    # -- the console's customer directory ------------------------------------------------------
    async def search(self, *, name: str = "", identity: str = "", phone: str = "", segment: str = "", limit: int = 50) -> list[Document]:
        """Customers by name prefix, channel identity (customer id or any channel address),
        phone number (exact, with or without separators) and segment, all given ones
        together; each criterion is served by an index."""
        query: Document = {}
        if name:
            query["profile.name"] = {"$gte": name, "$lt": name + "\uffff"}
        if phone:
            digits = "".join(ch for ch in phone if ch.isdigit())
            query["profile.phone"] = {"$in": sorted({phone, digits})}
        projection = {"profile": 1, "segments": 1, "settings.addresses": 1, "updated_at": 1}
        if segment and not query and not identity:
            return await self.segment_samples.members(segment, limit=limit, projection=projection)
        if segment:
            query["segments"] = segment
        if identity:
            found: dict[str, Document] = {}
            for q in [{"_id": identity}] + [
                {f"settings.addresses.{ch}.{cls.recipient_field}": identity} for ch, cls in self.book.classes.items()
            ]:
                async for doc in self.customers.find({**q, **query}, projection=projection).limit(limit):
                    found.setdefault(str(doc["_id"]), doc)
            return list(found.values())[:limit]
        if not query:
            return []
        return [doc async for doc in self.customers.find(query, projection=projection).limit(limit)]

    async def count_decided_by(self, name: str, paths: list[str]) -> int:
        """How many customers take at least one of ``paths`` from the layer ``name``
        (``"default"`` or ``"segment:<s>"``): members whose own settings do not set the
        path and who are in no other segment that sets it."""
        setting: dict[str, set[str]] = {p: set() for p in paths}
        for doc in await self.list_layers():
            if str(doc["_id"]).startswith("segment:") and doc["_id"] != name:
                for p in flatten(doc.get("settings") or {}):
                    if p in setting:
                        setting[p].add(str(doc["_id"])[len("segment:"):])
        branches: list[Document] = []
        for p in paths:
            branch: Document = {f"settings.{p}": {"$exists": False}}
            if setting[p]:
                branch["segments"] = {"$nin": sorted(setting[p])}
            branches.append(branch)
        if not branches:
            return 0
        query: Document = {"$or": branches}
        if name.startswith("segment:"):
            query = {"segments": name[len("segment:"):], **query}
        return int(await self.customers.count_documents(query))

    async def revert(self, customer_id: str, version: int, *, actor: str, via: str) -> tuple[int, list[str]]:
        """Undo one change of a customer's own layer (a new version); returns it and the
        paths left alone because they changed again since. A change the customer made
        themself is refused (:class:`CustomersOwnChoice`)."""
        rec = await self.history.find_one({"subject": customer_id, "version": version})
        if rec is None:
            raise UnknownVersion(f"{customer_id!r} has no version {version}")
        if is_customers_own(customer_id, str(rec.get("actor", "")), str(rec.get("via", ""))):
            raise CustomersOwnChoice("this change is the customer's own choice; only the customer can change it")
        if not diff(rec.get("old") or {}, rec.get("new") or {}):
            raise UnknownVersion(f"version {version} changed nothing")
        conflicts: list[str] = []

        def undo(current: JsonDict) -> JsonDict:
            layer, found = revert_patch(current, rec.get("old") or {}, rec.get("new") or {})
            conflicts[:] = found
            return layer

        new_version = await self._change(self.customers, customer_id, undo, actor, via, f"revert of version {version}")
        return new_version, conflicts
