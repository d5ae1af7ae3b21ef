"""What a knowledge turn adds to a reply, part by part, in one process.

Run: ``python bench/bench_knowledge_turn.py [--turns 500]``.

Starts Redis and the MongoDB-protocol server, loads the demo knowledge base, then for
each of five questions in turn (four the base answers, one it does not) times what the
knowledge skill does besides the NLU: the retrieval (revision check, encoding, scoring,
and the product lookup where it matters), the same retrieval given the sentence vector
the NLU returns with its parse (no encoding: what the gateway does with a model that
sends it), the detail-preference read when it answers, or the missed-turn record when
it does not. Complements
``bench_knowledge_conversation.py``, whose whole-stack figures the shared machine's
load moves a lot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import pct  # noqa: E402
from tests.services import mongo_server, redis_server  # noqa: E402

QUESTIONS = ["发票怎么开？", "how do I clean the filter?", "你们周末上班吗？", "XK-8800保修几年？", "今天天气怎么样"]


async def run(redis_url: str, mongo_url: str, turns: int) -> dict[str, list[float]]:
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

    from bot.messages import InboundMessage, MessageKind
    from knowledge.customer import CrmCustomerFacts
    from knowledge.missed import MissedTurn
    from knowledge.service import build_knowledge, load_demo
    from preferences.store import PreferenceStore
    from skills.repair_dispatch.catalog import Catalog

    redis = Redis.from_url(redis_url)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    db = mongo.get_default_database()
    facts = CrmCustomerFacts(Catalog(db), PreferenceStore(db, redis=redis))
    kb = await build_knowledge(db, redis, facts)
    await load_demo(kb.store)
    msg = InboundMessage("wechat", "demo", "oBench", "wechat:demo:oBench", MessageKind.TEXT, "1", 0.0, text="")
    await kb.retriever.search("warm up")
    # The NLU's vectors: computed before the clock, as Rasa computes them before the turn.
    vectors = kb.retriever.encoder.encode_blocking(QUESTIONS)
    times: dict[str, list[float]] = {
        "retrieval, encoding": [], "retrieval, NLU vector": [], "detail read (answered)": [],
        "missed record (not answered)": [], "whole turn, encoding": [],
    }
    try:
        for i in range(turns):
            text = QUESTIONS[i % len(QUESTIONS)]
            t = time.perf_counter()
            await kb.retriever.search(text, products=lambda: facts.products(msg), vector=vectors[i % len(QUESTIONS)])
            times["retrieval, NLU vector"].append((time.perf_counter() - t) * 1000)
            t0 = time.perf_counter()
            found = await kb.retriever.search(text, products=lambda: facts.products(msg))
            t1 = time.perf_counter()
            if found.answer is not None:
                await facts.detail(msg)
                key = "detail read (answered)"
            else:
                await kb.missed.add(MissedTurn("out_of_scope", text, "zh", msg.conversation))
                key = "missed record (not answered)"
            t2 = time.perf_counter()
            times["retrieval, encoding"].append((t1 - t0) * 1000)
            times[key].append((t2 - t1) * 1000)
            times["whole turn, encoding"].append((t2 - t0) * 1000)
    finally:
        await kb.close()
        await redis.aclose()
        await mongo.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-kbturn-") as tmp:
        with redis_server(Path(tmp)) as redis_url, mongo_server(Path(tmp)) as mongo_url:
            times = asyncio.run(run(redis_url, f"{mongo_url.rstrip('/')}/bench?retryWrites=false", args.turns))
    print(f"What the knowledge skill adds to a turn (demo base, {args.turns} turns, one at a time; "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'part':>30} {'count':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in times.items():
        print(f"{name:>30} {len(values):>6} {pct(values, 50):>8.1f} {pct(values, 95):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
