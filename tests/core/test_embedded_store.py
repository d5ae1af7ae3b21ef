"""The embedded MongoDB-protocol server as ``open_stores`` connects to it: a long run of
single-document writes costs per write what the first ones did.

With the driver's retryable writes on, SecantusDB charged more per write the longer it
ran (measured on this machine: a mean of about 1-2 ms per write over the first 1,000
writes, 4-14 ms over the 8th-10th thousand), so a gateway slowed down the longer it ran.
The embedded server is one local node, and its clients turn them off.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from bot.config import settings_from_mapping
from bot.stores import close_stores, open_stores

WRITES = 10_000
BLOCK = 1000
# Generous: under the shared machine's load a block's mean moves by tens of percent (the
# first and last two blocks are averaged against that); the slowdown this guards against
# was three- to sevenfold by the last blocks.
MAX_RATIO = 2.5


async def per_write_ms(coll: AsyncCollection[Any], writes: int, block: int) -> list[float]:
    """The mean cost of one write in each block of ``block`` writes (an insert, then an
    update of the document just inserted, as a conversation's records are written)."""
    means: list[float] = []
    for b in range(writes // block):
        costs: list[float] = []
        for i in range(block):
            k = b * block + i
            t0 = time.perf_counter()
            if k % 2:
                await coll.update_one({"_id": k - 1}, {"$set": {"status": "sent", "n": k}})
            else:
                await coll.insert_one({"_id": k, "status": "queued"})
            costs.append(time.perf_counter() - t0)
        means.append(statistics.mean(costs) * 1000)
    return means


async def test_a_long_run_of_writes_does_not_slow_down(tmp_path: Path, redis_url: str) -> None:
    settings = settings_from_mapping({"channels": {}, "data_dir": str(tmp_path), "redis_url": redis_url}, env={})
    redis, mongo, embedded = await open_stores(settings)
    try:
        assert [s.name for s in embedded] == ["mongo"]
        assert mongo.options.retry_writes is False
        coll = mongo.get_default_database()["writes"]
        costs = await per_write_ms(coll, WRITES, BLOCK)
        assert await coll.count_documents({"status": "sent"}) == WRITES // 2
    finally:
        await close_stores(redis, mongo, embedded)
    first, last = statistics.mean(costs[:2]), statistics.mean(costs[-2:])
    assert last <= MAX_RATIO * first, f"per-write cost by block of {BLOCK} (ms): {[round(c, 2) for c in costs]}"


async def test_a_configured_mongo_url_keeps_the_driver_default(tmp_path: Path, redis_url: str, mongo_url: str) -> None:
    # A replica set fails over: a write retried on the new primary is worth keeping there.
    settings = settings_from_mapping({"channels": {}, "data_dir": str(tmp_path), "redis_url": redis_url, "mongo_url": mongo_url}, env={})
    redis, mongo, embedded = await open_stores(settings)
    try:
        assert embedded == []
        assert mongo.options.retry_writes is True
    finally:
        await close_stores(redis, mongo, embedded)
