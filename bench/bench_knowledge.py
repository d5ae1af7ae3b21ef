"""Knowledge retrieval over a large base: p50/p95/p99 per question, round trips per question.

Run: ``python bench/bench_knowledge.py [--entries 10000] [--questions 500]``.

Starts a private redis-server and the MongoDB-protocol server, imports ``--entries``
entries through the knowledge store (the demo base's 70 entries repeated over
generated product models XK-1000, XK-1001, ... so that many entries look alike, as a
real catalogue's do; their vectors are reused from the demo's, see ``ReusingEncoder``), loads the retriever's index from the store, then asks the labelled
questions (zh and en, some with a product the customer owns) one after another through
``Retriever.search``: revision check in Redis, sentence vector, fused scoring.
Store commands are counted with a PyMongo command listener and a Redis MONITOR-free
count (the retriever's only Redis call per question is one GET).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import monitoring  # noqa: E402

from bench.bench_ack import pct, start, stop  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402


class ReusingEncoder:
    """For the import only: the generated entries differ from the demo's by a model
    number, so each text is encoded once with the model written as XK-8800 and reused.
    The vectors are as many and as large as real ones (what the search time depends
    on); encoding 60,000 texts would take this machine many minutes and measure nothing
    the retrieval does. Questions are encoded for real."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.name = real.name
        self.cache: dict[str, Any] = {}

    def encode_blocking(self, texts: Any) -> Any:
        import numpy as np

        keys = [re.sub(r"XK-\d{4}", "XK-8800", t) for t in texts]
        missing = sorted({k for k in keys if k not in self.cache})
        if missing:
            self.cache.update(zip(missing, self.real.encode_blocking(missing)))
        return np.vstack([self.cache[k] for k in keys])

    async def encode(self, texts: Any) -> Any:
        return await self.real.run(lambda: self.encode_blocking(list(texts)))

    async def run(self, work: Any) -> Any:
        return await self.real.run(work)


class CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_MODEL = re.compile(r"XK-(8800|9900)")


def synthetic(entries: list[Any], count: int) -> list[Any]:
    from knowledge.entry import Answer

    out = []
    for i in range(count):
        base = entries[i % len(entries)]
        if i < len(entries):
            out.append(base)
            continue
        model = f"XK-{1000 + i // len(entries)}"

        def swap(text: str) -> str:
            return _MODEL.sub(model, text)

        out.append(replace(
            base,
            id=f"{base.id}-{i}",
            title=swap(base.title),
            questions=tuple(swap(q) for q in base.questions),
            answers={k: Answer(swap(a.short), swap(a.full)) for k, a in base.answers.items()},
            tags=tuple(model if _MODEL.fullmatch(t) else t for t in base.tags),
        ))
    return out


async def run(args: argparse.Namespace, tmp: Path) -> None:
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

    from knowledge.encoder import UniversalSentenceEncoder
    from knowledge.evaluation import DEMO_BASE, DEMO_SET, load_set
    from knowledge.importer import parse_file
    from knowledge.lexical import Words
    from knowledge.retrieval import Retriever
    from knowledge.store import KnowledgeStore

    redis_port, mongo_port = free_port(), free_port()
    procs = [
        start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(tmp)], tmp / "redis.log"),
        start([str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1", "--port", str(mongo_port),
               "--storage-path", ":memory:"], tmp / "mongo.log"),
    ]
    counter = CommandCounter()
    encoder = UniversalSentenceEncoder()
    try:
        await asyncio.to_thread(wait_port, redis_port, procs[0], 10)
        await asyncio.to_thread(wait_port, mongo_port, procs[1], 10)
        redis = Redis(port=redis_port)
        mongo: AsyncMongoClient[Any] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{mongo_port}/bench?retryWrites=false", event_listeners=[counter]
        )
        store = KnowledgeStore(mongo.get_default_database(), redis, ReusingEncoder(encoder))
        await store.ensure_indexes()
        words = Words()
        await encoder.run(words.load)
        entries = synthetic(parse_file(DEMO_BASE).entries, args.entries)
        t0 = time.perf_counter()
        report = await store.save_many(entries, actor="bench")
        import_s = time.perf_counter() - t0
        retriever = Retriever(store, encoder, words)
        t0 = time.perf_counter()
        index = await retriever.current()
        load_s = time.perf_counter() - t0
        labelled = load_set(DEMO_SET)
        questions = [(item.question, frozenset({"XK-8800"}) if i % 3 == 0 else frozenset()) for i, item in enumerate(labelled)]
        for text, products in questions[:20]:  # warm-up: caches, first BLAS calls
            await retriever.search(text, products=products)
        before = sum(counter.counts.values())
        redis_before = (await redis.info("commandstats")).get("cmdstat_get", {}).get("calls", 0)
        latencies: list[float] = []
        for i in range(args.questions):
            text, products = questions[i % len(questions)]
            t0 = time.perf_counter()
            await retriever.search(text, products=products)
            latencies.append((time.perf_counter() - t0) * 1000)
        mongo_per_q = (sum(counter.counts.values()) - before) / args.questions
        redis_after = (await redis.info("commandstats")).get("cmdstat_get", {}).get("calls", 0)
        redis_per_q = (redis_after - redis_before - 1) / args.questions  # the INFO call itself is not a GET
        print(f"Knowledge retrieval over {len(index)} entries ({index.vectors.shape[0]} form vectors), "
              f"{args.questions} questions one at a time")
        print(f"import: {report.created} entries in {import_s:.1f} s (vectors included); index load from the store: {load_s:.1f} s")
        print(f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'mongo cmds/q':>13} {'redis GETs/q':>13}")
        print(f"{pct(latencies, 50):>8.1f} {pct(latencies, 95):>8.1f} {pct(latencies, 99):>8.1f} "
              f"{statistics.mean(latencies):>8.1f} {mongo_per_q:>13.2f} {redis_per_q:>13.2f}")
        await redis.aclose()
        await mongo.close()
    finally:
        encoder.close()
        for proc in procs:
            stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-kb-") as tmp:
        asyncio.run(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
