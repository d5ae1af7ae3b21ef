"""Keeping corrected voice transcripts for the trainer: MongoDB commands and time per item.

``python bench/bench_corrections.py`` starts its own MongoDB-protocol server (or uses
``KEFU_TEST_MONGO_URL``) and writes ``--items`` corrections from ``--writers`` concurrent
turns, in two ways, alternating A/B for ``--rounds``:

* group: :class:`knowledge.transcripts.CorrectedTranscripts` (one group commit: what
  arrives while a command is in flight rides the next one);
* single: one ``update_one`` upsert per correction (the plain way).

It prints commands per item (counted by a command listener) and wall time per item,
with the load average next to each row.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymongo import AsyncMongoClient  # noqa: E402

from bench.report import CommandCounter, load_average  # noqa: E402
from bot.voice import CorrectedTranscript  # noqa: E402
from knowledge.transcripts import NEW, CorrectedTranscripts  # noqa: E402
from tests.services import mongo_server  # noqa: E402


def correction(round_: int, i: int) -> CorrectedTranscript:
    return CorrectedTranscript(
        message=f"wechat:demo:r{round_}m{i}", conversation=f"wechat:demo:o{i}", heard="我的xk八八零零不制冷",
        meant=f"我的XK-8800不制冷了（{i}）", correction=f"wechat:demo:r{round_}m{i}b", language="zh", how="said_again",
    )


async def single(store: CorrectedTranscripts, c: CorrectedTranscript) -> None:
    await store.kept.update_one({"_id": c.message}, {"$setOnInsert": {
        "at": time.time(), "conversation": c.conversation, "heard": c.heard, "meant": c.meant, "correction": c.correction,
        "language": c.language, "how": c.how, "status": NEW,
    }}, upsert=True)


async def one_run(url: str, way: str, round_: int, items: int, writers: int) -> tuple[float, float]:
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url + "/kefu_bench_corrections", event_listeners=[counter])
    store = CorrectedTranscripts(client.get_default_database())
    await store.ensure_indexes()
    queue: asyncio.Queue[CorrectedTranscript] = asyncio.Queue()
    for i in range(items):
        queue.put_nowait(correction(round_ * 10 + (way == "single"), i))

    async def writer() -> None:
        while not queue.empty():
            c = queue.get_nowait()
            await (store.corrected(c) if way == "group" else single(store, c))

    before = counter.count
    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - start
    commands = counter.count - before
    await client.close()
    return commands / items, elapsed / items * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mongo_server(Path(tmp)) as url:
        print(f"{args.items} corrections from {args.writers} concurrent writers, {args.rounds} rounds, A/B alternating")
        print(f"{'way':<7} {'round':>5} {'commands/item':>14} {'ms/item':>8}  load")
        for r in range(args.rounds):
            for way in ("group", "single") if r % 2 == 0 else ("single", "group"):
                per_item, ms = await one_run(url, way, r, args.items, args.writers)
                print(f"{way:<7} {r:>5} {per_item:>14.3f} {ms:>8.3f}  {load_average()}")


if __name__ == "__main__":
    asyncio.run(main())
