"""The first members of each segment, remembered for the console's segment-only search.

A search by segment alone asks for 50 of a segment's possibly tens of thousands of
members. The embedded MongoDB-protocol server reads every index match of a query before
it applies the limit (an ``_id`` range as much as the ``segments`` index), so that query
costs time in proportion to the segment's size: over 300 ms at 6,700 members. Reading
documents by ``_id`` with ``$in`` does not. So the members one full query found are kept
here, one small document per segment, and later searches read them back by ``_id``.

What is kept is a cache, never the truth: each remembered member is read back and its
segments checked, so a customer who left the segment is not shown; when any has
left, or the sample is older than ``max_age_s`` (a customer who joined since shows up
after that), the full query runs once more and the sample is replaced. A data erasure
removes the customer from every sample (:mod:`preferences.data_rights`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import Document, find_by_ids

SAMPLE_SIZE = 200  # members remembered per segment: a few searches' worth
MAX_AGE_S = 300.0


class SegmentSamples:
    """Owns ``pref_segment_samples``: ``{_id: segment, members: [customer ids], complete, at}``."""

    def __init__(
        self, db: AsyncDatabase[Document], customers: AsyncCollection[Document], now: Callable[[], float], *, max_age_s: float = MAX_AGE_S
    ) -> None:
        self.samples = db["pref_segment_samples"]
        self.customers = customers  # the preference store's, read through its own indexes
        self.now = now  # the store's clock, which tests may move
        self.max_age_s = max_age_s

    async def members(self, segment: str, *, limit: int, projection: Mapping[str, Any]) -> list[Document]:
        """Up to ``limit`` customers in ``segment``."""
        sample = await self.samples.find_one({"_id": segment})
        if sample is not None and self.now() - float(sample.get("at", 0.0)) < self.max_age_s:
            ids = [str(i) for i in sample.get("members") or ()][:limit]
            # By _id alone, membership checked here: with the segment in the filter the
            # embedded server's planner takes the segment index and reads every member.
            read = await find_by_ids(self.customers, ids, projection={**projection, "segments": 1})
            found = {k: d for k, d in read.items() if segment in (d.get("segments") or ())}
            # Every remembered member still in it, and as many as asked for or all there are.
            if len(found) == len(ids) and (len(ids) == limit or sample.get("complete")):
                return [found[i] for i in ids]
        return await self._sample(segment, limit=limit, projection=projection)

    async def _sample(self, segment: str, *, limit: int, projection: Mapping[str, Any]) -> list[Document]:
        size = max(limit, SAMPLE_SIZE)
        found = [d async for d in self.customers.find({"segments": segment}, projection=projection).limit(size)]
        doc = {"members": [str(d["_id"]) for d in found], "complete": len(found) < size, "at": self.now()}
        await self.samples.replace_one({"_id": segment}, doc, upsert=True)
        return found[:limit]

    async def forget_customer(self, customer_id: str) -> int:
        """Remove a customer from every sample (an erasure); how many samples named them."""
        result = await self.samples.update_many({"members": customer_id}, {"$pull": {"members": customer_id}})
        return result.modified_count
