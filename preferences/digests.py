"""Digests: the records notifications are filed into (``pref_digests``) and the batches
that build and send them when they fall due (``pref_digest_batches``).

Each filing renders the whole digest as it will then stand and stores it with the item
when no other filing came in between; the build sends that text when it still matches
(revision, item count, language, channel, templates), so the weekly burst reads and
queues instead of rendering every digest. A build's outcomes are committed as one batch
record and settled later by :meth:`Digests.settle` into ``pref_digest_outcomes``: one
small document per digest (status, channels), written with ``insert_many``.

Where a digest stands: its record's ``status`` when that is not ``scheduled`` (records
settled one by one: the channel fallback, records settled before the outcomes
collection existed), else its outcome document, else its batch's run while the batch
waits for the settle, else it is still scheduled.
"""

from __future__ import annotations

import bisect
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from bot.logs import ref
from bot.messages import OutboundMessage
from bot.mongo import Document, find_by_ids
from preferences.clock import Clock
from preferences.delivery import KEY_PREFIX, Delivery
from preferences.model import Preferences
from preferences.store import PREF_FIELDS, PreferenceStore

log = logging.getLogger(__name__)

_OUTCOME_CHUNK = 1000  # outcome documents per insert_many
# resync() looks this far back for digests still waiting: records are never rewritten
# when they are settled, so without a bound it would read every digest ever filed.
RESYNC_LOOKBACK_S = 35 * 86_400.0


class Digests:
    def __init__(self, db: AsyncDatabase[Document], prefs: PreferenceStore, delivery: Delivery, clock: Clock) -> None:
        self.records = db["pref_digests"]
        self.batches = db["pref_digest_batches"]
        self.outcomes = db["pref_digest_outcomes"]
        # Items filed before they travelled inside the digest record are read from here.
        self.notifications = db["notifications"]
        self.prefs = prefs
        self.delivery = delivery
        self.clock = clock

    async def ensure_indexes(self) -> None:
        await self.records.create_indexes(
            [
                IndexModel([("customer", ASCENDING)]),
                IndexModel([("status", ASCENDING)]),
                IndexModel([("due_at", ASCENDING), ("_id", ASCENDING)]),
                IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),  # resync's window
            ]
        )
        await self.batches.create_indexes([IndexModel([("due_at", ASCENDING)]), IndexModel([("created_at", ASCENDING)])])
        await self.outcomes.create_indexes([IndexModel([("due_at", ASCENDING), ("_id", ASCENDING)])])

    def filing(self, doc: Document, customer: Mapping[str, Any], taken: float, channel: str | None) -> Filing:
        """A notification ready to file into its digest (see :meth:`file_many`). The item
        is rendered now for the channel it will most likely go out on, so the build
        renders one wrapper per digest instead of every item again."""
        item = {f: doc[f] for f in _ITEM_FIELDS if f != "digest_id"}
        item["text"] = {channel: self.delivery.render_notification(doc, channel)} if channel else {}
        # A copy of the customer's own record as of ``taken``: the build uses it when the
        # store's change notes show no write since (one read fewer per digest), and reads
        # the record otherwise. Any filing's copy is valid with its time.
        who = {f: customer.get(f) for f in PREF_FIELDS}
        return Filing(doc["_id"], doc["digest_id"], doc["customer"], doc["deliver_at"], item, who, taken, doc["language"], channel)

    async def file_many(self, filings: Sequence[Filing]) -> dict[str, Exception]:
        """File a batch's items into their digests; returns the errors by notification id
        (an item not filed; its neighbours are).

        Each filing is a new revision of its digest, stored with the whole digest rendered
        as it then stands, for the channel and language it will most likely go out in: the
        build (one burst for every customer) sends that text instead of rendering it;
        filings are spread over the period. The digests are read once; new ones are
        inserted whole (one ``insert_many``), existing ones updated with a compare-and-set
        on the revision (one bulk write). A digest another filing changed in between, or
        one no longer scheduled, gets its items without a text (the build renders it)."""
        errors: dict[str, Exception] = {}
        groups: dict[str, list[Filing]] = {}
        for f in filings:
            groups.setdefault(f.did, []).append(f)
        current = await find_by_ids(self.records, groups, projection={"items": 1, "rev": 1, "status": 1})
        plain = [did for did, d in current.items() if d.get("status") != "scheduled" or "rev" not in d or "items" not in d]
        new = [self._new_record(did, groups[did]) for did in groups if did not in current]
        if new:
            try:
                await self.records.insert_many(new, ordered=False)
            except BulkWriteError as exc:
                for err in exc.details.get("writeErrors", []):
                    did = new[err["index"]]["_id"]
                    if err.get("code") == 11000:  # a concurrent filing created it first
                        plain.append(did)
                    else:
                        _fail(errors, groups[did], err)
        cas = [did for did in current if did not in plain]
        ops = [self._next_revision(did, current[did], groups[did]) for did in cas]
        if ops and await _bulk(self.records, ops, cas, groups, errors) < len(ops):
            moved = await find_by_ids(self.records, cas, projection={"items": 1})
            plain += [did for did in cas if any(f.nid not in moved.get(did, {}).get("items", {}) for f in groups[did])]
        plain = [did for did in dict.fromkeys(plain) if not any(f.nid in errors for f in groups[did])]
        if plain:
            await _bulk(self.records, [self._plain_filing(did, groups[did]) for did in plain], plain, groups, errors)
        return errors

    def _new_record(self, did: str, fs: Sequence[Filing]) -> Document:
        items = {f.nid: f.item for f in fs}
        last = fs[-1]
        doc: Document = {"_id": did, "customer": last.customer, "due_at": last.due_at, "status": "scheduled", "created_at": time.time(),
                         "items": items, "rev": len(fs), "who": last.who, "who_at": last.taken}
        if last.channel:
            doc["rendered"] = self.prerendered(len(fs), last.language, last.channel, items)
        return doc

    def _next_revision(self, did: str, digest: Mapping[str, Any], fs: Sequence[Filing]) -> UpdateOne:
        last = fs[-1]
        rev = int(digest["rev"]) + len(fs)
        fields: Document = {**{f"items.{f.nid}": f.item for f in fs}, "who": last.who, "who_at": last.taken}
        if last.channel:
            fields["rendered"] = self.prerendered(rev, last.language, last.channel, {**digest["items"], **{f.nid: f.item for f in fs}})
        return UpdateOne({"_id": did, "rev": digest["rev"]}, {"$set": fields, "$inc": {"rev": len(fs)}})

    @staticmethod
    def _plain_filing(did: str, fs: Sequence[Filing]) -> UpdateOne:
        last = fs[-1]
        on_insert = {"customer": last.customer, "due_at": last.due_at, "status": "scheduled", "created_at": time.time()}
        fields: Document = {**{f"items.{f.nid}": f.item for f in fs}, "who": last.who, "who_at": last.taken}
        return UpdateOne({"_id": did}, {"$setOnInsert": on_insert, "$set": fields, "$inc": {"rev": len(fs)}}, upsert=True)

    def prerendered(self, rev: int, language: str, channel: str, items: Mapping[str, Document]) -> Document:
        """The ``rendered`` field of a digest record of revision ``rev`` holding ``items``
        (by notification id, as in the record)."""
        return {
            "rev": rev,
            "n": len(items),
            "language": language,
            "channel": channel,
            "templates": self.delivery.renderer.fingerprint,
            "text": self.delivery.render_digest(language, channel, _item_list(items)),
        }

    def _rendered_text(self, digest: Mapping[str, Any], language: str, channel: str) -> str | None:
        """The digest's text rendered at filing, if it still says what a render now would."""
        r = digest.get("rendered")
        if not isinstance(r, dict) or r.get("rev") != digest.get("rev"):
            return None
        # The item count guards against items removed without a filing (withdrawn).
        if (r.get("n"), r.get("language"), r.get("channel"), r.get("templates")) != (
            len(digest.get("items") or {}), language, channel, self.delivery.renderer.fingerprint
        ):
            return None
        text = r.get("text")
        return text if isinstance(text, str) else None

    async def send(self, ids: list[str], due_of: Mapping[str, float]) -> None:
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
            in_range = [d async for d in self.records.find({"due_at": due, "_id": {"$gte": lo, "$lte": hi}}).sort("_id", ASCENDING)]
            settled = await self._settled_ids(due, lo, hi)
            built = await self._built(due)
            found.update(str(d["_id"]) for d in in_range if d["_id"] in mine)
            waiting = {str(d["_id"]) for d in in_range if d.get("status") == "scheduled" and d["_id"] not in settled}
            todo = {str(d["_id"]): d for d in in_range if d["_id"] in mine and d["_id"] in waiting and built(d) is None}
            outcomes = await self._build_digests(todo)
            # Runs of consecutive digests with one outcome; a digest in the range that is
            # not ours and still waiting (another worker's, or another batch's) ends a run.
            runs: list[Document] = []
            run: list[str] = []
            key: tuple[Any, ...] | None = None
            for d in in_range:
                did = str(d["_id"])
                k = outcomes.get(did)
                if k is None:
                    if did in waiting:
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
            digest = await self.records.find_one({"_id": did, "status": "scheduled"})
            if digest is None or await self.outcomes.find_one({"_id": did}, projection={"_id": 1}) is not None:
                continue
            due = float(digest["due_at"])
            if (await self._built(due))(digest) is not None:
                continue
            runs = []
            for k in (await self._build_digests({did: digest})).values():
                _close_run(runs, [did], k)
            await self._commit(due, read_at, runs, 1)

    async def _settled_ids(self, due: float, lo: str, hi: str) -> set[str]:
        """Digests of ``due`` in ``[lo, hi]`` with an outcome document (settled)."""
        query = {"due_at": due, "_id": {"$gte": lo, "$lte": hi}}
        return {str(d["_id"]) async for d in self.outcomes.find(query, projection={"_id": 1})}

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
        """Write built batches' outcomes as outcome documents, oldest batch first; returns
        how many batches were settled. Idempotent (an outcome already written is a
        duplicate key, kept as it is), so any worker may run it, and a crash half-way is
        finished by the next call. It runs after the sends, off the build's clock; until
        then :meth:`_built` keeps the batch's digests from being built again.

        Per batch: one id-only range read of the digest records (which digests a run
        covers: those that existed when the batch was read and were still scheduled),
        ``insert_many`` of small documents, and the batch's delete. Rewriting each digest
        record instead cost the embedded server milliseconds per record (it copies and
        diffs the whole document for every update), minutes for a weekly burst."""
        done = 0
        async for batch in self.batches.find({}).sort("created_at", ASCENDING).limit(limit):
            if await self._settle_batch(batch):
                await self.batches.delete_one({"_id": batch["_id"]})
                done += 1
        return done

    async def _settle_batch(self, batch: Mapping[str, Any]) -> bool:
        """Insert the outcome documents of one batch; False when some could not be written
        (the batch is kept and settled again later; the others are written already)."""
        runs = sorted(batch["runs"], key=lambda r: str(r["lo"]))
        if not runs:
            return True
        due, read_at, now = batch["due_at"], float(batch["read_at"]), float(batch["created_at"])
        los = [str(r["lo"]) for r in runs]
        query = {"due_at": due, "_id": {"$gte": los[0], "$lte": max(str(r["hi"]) for r in runs)}}
        docs: list[Document] = []
        async for d in self.records.find(query, projection={"status": 1, "created_at": 1}):
            did = str(d["_id"])
            i = bisect.bisect_right(los, did) - 1
            if i < 0 or did > str(runs[i]["hi"]):
                continue
            if d.get("status") != "scheduled" or float(d.get("created_at", 0)) > read_at:
                continue  # settled on its own already, or created after the batch read
            docs.append({"_id": did, "due_at": due, **_outcome_fields(runs[i], now)})
        ok = True
        for start in range(0, len(docs), _OUTCOME_CHUNK):
            ok = await self._insert_outcomes(docs[start : start + _OUTCOME_CHUNK]) and ok
        return ok

    async def _insert_outcomes(self, docs: list[Document]) -> bool:
        # ordered=False: every document is tried, one that fails fails alone.
        try:
            await self.outcomes.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            failed = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]  # 11000: settled before
            for e in failed:
                log.warning("digest %s: outcome not written (code %s)", ref(str(docs[int(e["index"])]["_id"])), e.get("code"))
            return not failed
        return True

    async def outcome_of(self, digest: Mapping[str, Any]) -> Document | None:
        """What a digest came to, as fields of its record (None: still scheduled)."""
        if digest.get("status") != "scheduled":
            return {k: digest[k] for k in ("status", "done_at", "channels", "channel") if k in digest}
        settled = await self.outcomes.find_one({"_id": digest["_id"]}, projection={"_id": 0, "due_at": 0})
        if settled is not None:
            return dict(settled)
        run = (await self._built(float(digest["due_at"])))(digest)
        return None if run is None else _outcome_fields(run, self.clock.now())

    async def settle_one(self, digest: Document) -> Document:
        """A built digest's outcome written to its record ahead of its batch (settle() then
        leaves it alone): what the fallback needs, without settling every batch first."""
        fields = await self.outcome_of(digest)
        if fields is None or digest.get("status") != "scheduled":
            return digest
        await self.records.update_one({"_id": digest["_id"], "status": "scheduled"}, {"$set": fields})
        # The record speaks for the digest from now on (the fallback writes to it).
        await self.outcomes.delete_one({"_id": digest["_id"]})
        return {**digest, **fields}

    async def waiting(self, since: float) -> dict[str, float]:
        """Digests due at or after ``since`` and not built: id -> due time (resync)."""
        query = {"status": "scheduled", "due_at": {"$gte": since}}
        found = {str(d["_id"]): float(d["due_at"]) async for d in self.records.find(query, projection={"due_at": 1})}
        async for d in self.outcomes.find({"due_at": {"$gte": since}}, projection={"_id": 1}):
            found.pop(str(d["_id"]), None)
        return found

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

    async def items_of(self, digest: Mapping[str, Any]) -> list[Document]:
        """A digest's content: every item filed under it, whatever its status, so a digest
        rebuilt after a crash renders exactly what the first build rendered. Records filed
        before items travelled inside the digest are read from the notifications."""
        if "items" in digest:
            return _item_list(digest.get("items") or {})
        return [d async for d in self.notifications.find({"digest_id": digest["_id"]}, projection=_ITEM_FIELDS)]

    async def _build_digests(self, todo: Mapping[str, Document]) -> dict[str, tuple[Any, ...]]:
        """Render and queue the digests; returns each one's outcome (status, channels).
        A digest that cannot be built (a broken customer record, a template that fails on
        its items) is ``failed`` alone: the rest of the batch goes out."""
        outcomes: dict[str, tuple[Any, ...]] = {}
        messages: list[OutboundMessage] = []
        customers = await self._digest_customers(todo)
        for did, digest in todo.items():
            try:
                outcome, msg = await self._build_one(did, digest, customers.get(str(digest["customer"])))
            except Exception as exc:  # noqa: BLE001 - any one digest's data; the batch goes on
                log.warning("digest %s not built: %s", ref(did), type(exc).__name__)
                log.debug("digest %s not built", ref(did), exc_info=True)
                outcome, msg = ("failed", ()), None
            outcomes[did] = outcome
            if msg is not None:
                messages.append(msg)
        # The outbox's sender writes each digest's message record when it sends it: one
        # write per message here would cost more than the whole build.
        await self.delivery.enqueue(messages, record=False)
        return outcomes

    async def _build_one(
        self, did: str, digest: Document, cust: Document | None
    ) -> tuple[tuple[Any, ...], OutboundMessage | None]:
        # Items travel in the record; older records' items are read from the notifications.
        its = None if "items" in digest else await self.items_of(digest)
        if not (its or digest.get("items")):
            return ("empty", ()), None
        p = self.delivery.available(await self.prefs.effective_of(cust)) if cust else None
        channels = p.reachable() if p else ()
        if p is None or not channels:
            return ("undeliverable", ()), None
        text = self._rendered_text(digest, p.language, channels[0])
        if text is None:
            text = self.delivery.render_digest(p.language, channels[0], its or await self.items_of(digest))
        return ("sent", channels), self.message(did, p, channels[0], text)

    def message(self, did: str, prefs: Preferences, channel: str, text: str) -> OutboundMessage | None:
        return self.delivery.outbound(prefs, channel, f"{KEY_PREFIX}d:{did}:{channel}", text, "digest")

    async def due_between(self, start: float, end: float) -> list[tuple[float, int]]:
        """Digests still waiting per due time in ``[start, end)`` (the console's calendar)."""
        counts: dict[float, int] = defaultdict(int)
        for coll, match, sign in ((self.records, {"status": "scheduled"}, 1), (self.outcomes, {}, -1)):
            pipeline: list[dict[str, Any]] = [
                {"$match": {"due_at": {"$gte": start, "$lt": end}, **match}},
                {"$group": {"_id": "$due_at", "n": {"$sum": 1}}},
            ]
            async for d in await coll.aggregate(pipeline):
                counts[float(d["_id"])] += sign * int(d["n"])
        return sorted((due, n) for due, n in counts.items() if n > 0)

@dataclass(frozen=True, slots=True)
class Filing:
    """One notification to file into its digest (see :meth:`Digests.file_many`)."""

    nid: str
    did: str
    customer: str
    due_at: float
    item: Document
    who: Document
    taken: float
    language: str
    channel: str | None


def _fail(errors: dict[str, Exception], fs: Sequence[Filing], err: Mapping[str, Any]) -> None:
    for f in fs:
        errors[f.nid] = OperationFailure(str(err.get("errmsg", "write error")), err.get("code"))


async def _bulk(coll: Any, ops: list[UpdateOne], dids: Sequence[str], groups: Mapping[str, Sequence[Filing]], errors: dict[str, Exception]) -> int:
    """One unordered bulk write of one operation per digest; a failed operation fails
    that digest's items alone. Returns how many operations matched or created a record."""
    try:
        res = await coll.bulk_write(ops, ordered=False)
        return int(res.matched_count) + int(res.upserted_count)
    except BulkWriteError as exc:
        for err in exc.details.get("writeErrors", []):
            _fail(errors, groups[dids[err["index"]]], err)
        return int(exc.details.get("nMatched", 0)) + int(exc.details.get("nUpserted", 0))


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
