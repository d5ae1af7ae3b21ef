"""Text in -> reply out through the whole gateway with real Rasa NLU in the loop.

Run: ``python bench/bench_conversation.py`` after ``kefu nlu install && kefu nlu train``.
It starts Redis and a MongoDB-protocol server, one Rasa process on the trained model,
the gateway (``--role all``) and a fake WeChat API, then sends customer messages that
NLU must classify (greetings, repair reports, status questions) and times each from the
webhook POST to the customer-service send.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import ACCOUNT, pct  # noqa: E402
from bench.gateway_stack import gateway_stack  # noqa: E402
from channels.wechat.simulator import signed_request, text_xml  # noqa: E402

_msg_ids = itertools.count(7_000_000_000)  # unique MsgIds: a repeated one is dropped as a retry
PHRASES = ["你好", "my XK-8800 is not cooling", "我的维修到哪了", "thanks a lot", "转人工", "今天天气怎么样"]


async def drive(
    port: int, fake: Any, count: int, concurrency: int, tag: str = "", phrases: Sequence[str] = PHRASES
) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            user = f"oNlu{tag}{concurrency}x{i}"  # a conversation each: no form or hand-off state carried over
            query, body = signed_request(ACCOUNT, text_xml(user, phrases[i % len(phrases)], next(_msg_ids)))
            async with sem:
                t0 = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{port}/wechat/bench", params=query, data=body) as resp:
                    assert resp.status == 200
                while not fake.sent_to(user):
                    await asyncio.sleep(0.001)
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


async def run(args: argparse.Namespace, tmp: Path) -> dict[int, list[float]]:
    config = {"speech": {"enabled": False}, "pipeline": {"workers": args.workers}}
    async with gateway_stack(tmp, config=config, require_nlu=True) as stack:
        await drive(stack.port, stack.fake, 12, 1, "warm")  # its own users: a warm-up reply must not count later
        return {c: await drive(stack.port, stack.fake, args.messages, c) for c in (1, 8)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2, help="inbound workers in the gateway process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-nlu-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    print("Text in -> reply out with Rasa NLU (one Rasa process, gateway --role all, fake WeChat API)")
    print(f"{'concurrency':>12} {'messages':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for c, lat in results.items():
        print(f"{c:>12} {len(lat):>9} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} {statistics.mean(lat):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
