"""The first members of each segment, remembered for the console's segment-only search.

A search by segment alone asks for 50 of a segment's possibly tens of thousands of
members. The embedded MongoDB-protocol server reads every index match of a query before
it applies the limit (an ``_id`` range as much as the ``segments`` index), so that query
costs time in proportion to the segment's size: 0.6-2 s at 20,000 members on a loaded
machine. Reading documents by ``_id`` with ``$in`` does not. So up to
:data:`SAMPLE_SIZE` members of each segment are kept here, one small document per
segment, and a search reads them back by ``_id``.

The slow query stays off the search: the store keeps the samples current as customers
join (added while the sample has room) and leave (removed) a segment through it
(:meth:`SegmentSamples.changed`), and a background job (:meth:`refresh`, one process
at a time) tops up samples that fell short and rebuilds each one every ``max_age_s``,
which picks up members written around the store (a bulk import straight into the
collection). Only a segment no sample exists for yet (its first search before the
job's first round) runs the query on the request path, once.

What is kept is a cache, never the truth: each remembered member is read back and its
segments checked, so a customer who left by any path is not shown. A data erasure
removes the customer from every sample (:mod:`preferences.data_rights`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.mongo import Document, find_by_ids

log = logging.getLogger(__name__)

SAMPLE_SIZE = 200  # members remembered per segment: a few searches' worth
MAX_AGE_S = 300.0
REFRESH_LOCK = "kefu:prefs:segment-samples"


class SegmentSamples:
    """Owns ``pref_segment_samples``: ``{_id: segment, members: [customer ids], complete, at}``
    (``complete``: the sample holds every member the segment had when it was built, and
    those who joined through the store since)."""

    def __init__(
        self, db: AsyncDatabase[Document], customers: AsyncCollection[Document], now: Callable[[], float], *,
        max_age_s: float = MAX_AGE_S, redis: Redis | None = None,
    ) -> None:
        self.samples = db["pref_segment_samples"]
        self.customers = customers  # the preference store's, read through its own indexes
        self.now = now  # the store's clock, which tests may move
        self.max_age_s = max_age_s
        self.redis = redis  # for the refresh's lock: one process rebuilds at a time

    async def members(self, segment: str, *, limit: int, projection: Mapping[str, Any]) -> list[Document]:
        """Up to ``limit`` customers in ``segment``, from its sample."""
        sample = await self.samples.find_one({"_id": segment})
        if sample is None:
            return (await self._sample(segment, projection=projection))[:limit]
        ids = [str(i) for i in sample.get("members") or ()][:limit]
        # By _id alone, membership checked here: with the segment in the filter the
        # embedded server's planner takes the segment index and reads every member.
        read = await find_by_ids(self.customers, ids, projection={**projection, "segments": 1})
        # Someone who left by a path the store did not see is never shown; the sample is
        # topped up by the next refresh.
        return [read[i] for i in ids if i in read and segment in (read[i].get("segments") or ())]

    async def changed(self, joined: Mapping[str, Iterable[str]], left: Mapping[str, Iterable[str]]) -> None:
        """Customers joined or left segments through the store (``segment -> ids``)."""
        for segment, ids in left.items():
            await self.samples.update_one({"_id": segment}, {"$pull": {"members": {"$in": list(ids)}}})
        for segment, ids in joined.items():
            new = list(ids)
            sample = await self.samples.find_one({"_id": segment}, projection={"members": 1})
            if sample is None:
                continue  # no sample yet: its first search or the refresh builds it
            have = list(sample.get("members") or ())
            room = max(0, SAMPLE_SIZE - len(have))
            add = [i for i in new if i not in have][:room]
            update: Document = {"$addToSet": {"members": {"$each": add}}} if add else {}
            if len(add) < len([i for i in new if i not in have]):
                update["$set"] = {"complete": False}  # full: later members are not all here
            if update:
                await self.samples.update_one({"_id": segment}, update)

    async def refresh(self, segments: Iterable[str] | None = None, *, lock_s: float = 60.0) -> int:
        """Rebuild the samples that are short (fewer than :data:`SAMPLE_SIZE` members and
        not complete) or older than ``max_age_s``, of ``segments`` or of every segment
        that has members; returns how many were rebuilt. Runs in a background job."""
        if self.redis is not None and not await self.redis.set(REFRESH_LOCK, "1", nx=True, ex=max(1, int(lock_s))):
            return 0  # another process is at it
        try:
            names = list(segments) if segments is not None else [str(s) for s in await self.customers.distinct("segments") if s]
            known = {str(d["_id"]): d async for d in self.samples.find({"_id": {"$in": names}}, projection={"members": 1, "complete": 1, "at": 1})}
            rebuilt = 0
            for name in names:
                sample = known.get(name)
                short = sample is not None and not sample.get("complete") and len(sample.get("members") or ()) < SAMPLE_SIZE
                old = sample is None or self.now() - float(sample.get("at", 0.0)) >= self.max_age_s
                if short or old:
                    await self._sample(name, projection={"_id": 1})
                    rebuilt += 1
            return rebuilt
        finally:
            if self.redis is not None:
                await self.redis.delete(REFRESH_LOCK)

    async def _sample(self, segment: str, *, projection: Mapping[str, Any]) -> list[Document]:
        """The slow query: the segment's first :data:`SAMPLE_SIZE` members, remembered."""
        found = [d async for d in self.customers.find({"segments": segment}, projection=projection).limit(SAMPLE_SIZE)]
        doc = {"members": [str(d["_id"]) for d in found], "complete": len(found) < SAMPLE_SIZE, "at": self.now()}
        await self.samples.replace_one({"_id": segment}, doc, upsert=True)
        return found

    async def forget_customer(self, customer_id: str) -> int:
        """Remove a customer from every sample (an erasure); how many samples named them."""
        result = await self.samples.update_many({"members": customer_id}, {"$pull": {"members": customer_id}})
        return result.modified_count
