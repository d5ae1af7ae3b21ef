"""The console's segment-only customer search reads a remembered sample of the segment
by ``_id`` (bench/bench_marketing.py measures why): it shows members only, never one who
left; a newcomer through the store at once and one written around it after the
background refresh; the slow segment query runs in that refresh, not in a search (but
the very first search of a segment nobody built a sample for); an erasure leaves no
trace in the samples."""

from __future__ import annotations

from typing import Any

from pymongo import monitoring

from preferences.clock import ManualClock
from preferences.segment_samples import MAX_AGE_S
from preferences.store import PreferenceStore


class Finds(monitoring.CommandListener):
    """The ``find`` commands sent on the customers collection, with their filters."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "pref_customers":
            self.filters.append(dict(event.command.get("filter") or {}))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_members_only_newcomers_at_once_and_the_index_query_off_the_search(mongo_url: str, redis: Any) -> None:
    from pymongo import AsyncMongoClient

    finds = Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[finds])
    try:
        clock = ManualClock(1_800_000_000.0)
        db = client.get_default_database()
        store = PreferenceStore(db, clock, redis=redis)
        await store.ensure_indexes()
        for i in range(7):
            await store.create(f"c{i}", profile={"name": f"客户{i}"}, segments=["vip"] if i % 2 == 0 else ["smb"])

        def ids(found: list[dict[str, Any]]) -> list[str]:
            return sorted(str(d["_id"]) for d in found)

        def segment_queries() -> list[dict[str, Any]]:
            return [f for f in finds.filters if "segments" in f]

        # The background job builds the samples: no search runs the segment query.
        assert await store.segment_samples.refresh() == 2
        finds.filters.clear()
        assert ids(await store.search(segment="vip", limit=3)) == ["c0", "c2", "c4"]
        assert ids(await store.search(segment="vip")) == ["c0", "c2", "c4", "c6"]
        # Read back by _id alone: with the segment in the filter the server would take its index.
        assert finds.filters and all("_id" in f for f in finds.filters) and not segment_queries()

        await store.update_profile("c2", {"name": "客户2"}, segments=["smb"])  # left the segment
        assert ids(await store.search(segment="vip")) == ["c0", "c4", "c6"]
        await store.create("c8", profile={"name": "客户8"}, segments=["vip"])  # joined: shown at once
        assert "c8" in ids(await store.search(segment="vip"))
        await store.update_profile("c1", {}, segments=["smb", "vip"])
        assert "c1" in ids(await store.search(segment="vip"))
        assert not segment_queries()

        # Around the store (a bulk import, a hand edit): a leaver is still never shown;
        # a newcomer shows after the job's next round.
        await db["pref_customers"].update_one({"_id": "c4"}, {"$set": {"segments": []}})
        await db["pref_customers"].insert_one({"_id": "c9", "profile": {"name": "客户9"}, "segments": ["vip"]})
        assert ids(await store.search(segment="vip")) == ["c0", "c1", "c6", "c8"]
        assert await store.segment_samples.refresh() == 0  # complete and young: nothing to do
        clock.advance(MAX_AGE_S + 1)
        assert await store.segment_samples.refresh() == 2
        assert ids(await store.search(segment="vip")) == ["c0", "c1", "c6", "c8", "c9"]
        assert ids(await store.search(segment="vip", name="客户8")) == ["c8"]  # with a name: the index, at once

        # A segment no sample exists for yet: its first search runs the query, once.
        finds.filters.clear()
        assert await store.search(segment="nobody") == []
        assert await store.search(segment="nobody") == []
        assert len(segment_queries()) == 1

        assert await store.segment_samples.forget_customer("c8") == 1
        sample = await db["pref_segment_samples"].find_one({"_id": "vip"})
        assert sample is not None and "c8" not in sample["members"]
    finally:
        await client.close()
