"""The console's segment-only customer search reads a remembered sample of the segment
by ``_id`` (bench/bench_marketing.py measures why): it shows members only, never one who
left, and a newcomer within ``max_age_s``; an erasure leaves no trace in the samples."""

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


async def test_members_only_newcomers_in_time_and_the_index_query_once(mongo_url: str) -> None:
    from pymongo import AsyncMongoClient

    finds = Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[finds])
    try:
        clock = ManualClock(1_800_000_000.0)
        store = PreferenceStore(client.get_default_database(), clock)
        await store.ensure_indexes()
        for i in range(7):
            await store.create(f"c{i}", profile={"name": f"客户{i}"}, segments=["vip"] if i % 2 == 0 else ["smb"])

        def ids(found: list[dict[str, Any]]) -> list[str]:
            return sorted(str(d["_id"]) for d in found)

        assert ids(await store.search(segment="vip", limit=3)) == ["c0", "c2", "c4"]
        assert ids(await store.search(segment="vip")) == ["c0", "c2", "c4", "c6"]
        finds.filters.clear()
        assert ids(await store.search(segment="vip")) == ["c0", "c2", "c4", "c6"]
        # Read back by _id alone: with the segment in the filter the server would take its index.
        assert finds.filters and all("_id" in f and "segments" not in f for f in finds.filters)

        await store.update_profile("c2", {"name": "客户2"}, segments=["smb"])  # left the segment
        assert ids(await store.search(segment="vip")) == ["c0", "c4", "c6"]
        await store.create("c8", profile={"name": "客户8"}, segments=["vip"])  # joined
        assert "c8" not in ids(await store.search(segment="vip"))  # the sample is young: not yet
        clock.advance(MAX_AGE_S + 1)
        assert "c8" in ids(await store.search(segment="vip"))
        assert ids(await store.search(segment="vip", name="客户8")) == ["c8"]  # with a name: the index, at once
        assert await store.search(segment="nobody") == []

        assert await store.segment_samples.forget_customer("c4") == 1
        sample = await client.get_default_database()["pref_segment_samples"].find_one({"_id": "vip"})
        assert sample is not None and "c4" not in sample["members"]
    finally:
        await client.close()
