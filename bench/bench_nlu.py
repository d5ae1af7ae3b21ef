"""Parse latency and throughput through NluClient, with one and with two Rasa processes.

    python bench/bench_nlu.py [--requests 600] [--concurrency 8] [--url URL ...]

Without --url it installs/trains if needed (cached), starts two Rasa processes on free
loopback ports, and measures: one URL, then both URLs round robin. With --url it
measures the servers you give it, one URL first, then all of them. All traffic stays on
127.0.0.1; the request count bounds the run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.nlu import service  # noqa: E402
from bot.nlu.client import NluClient  # noqa: E402
from bot.nlu.errors import NluUnavailable  # noqa: E402
from bot.nlu.settings import NluSettings  # noqa: E402

TEXTS = [
    "我的XK-8800不制冷了，麻烦派师傅",
    "my ZR-200 makes noise, please fix",
    "维修进度怎么样了",
    "when does my contract expire",
    "帮我续约一年",
    "快递还没到，太慢了",
    "the product quality is awful",
    "以后用钉钉通知我，每周一次",
    "what are my notification settings",
    "转人工",
    "delete my data",
    "导出我的个人数据",
    "今天天气怎么样",
    "thanks a lot",
    "你好",
    "asdfgh",
]


async def measure(urls: Sequence[str], requests: int, concurrency: int) -> dict[str, float]:
    """Send ``requests`` parses with ``concurrency`` in flight; latency and rate."""
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as http:
        client = NluClient(http, urls, timeout_s=10.0)
        for text in TEXTS:  # warm-up: first parses trace TF functions
            for _ in urls:
                await client.parse(text)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(TEXTS[i % len(TEXTS)])

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                text = queue.get_nowait()
                t0 = time.perf_counter()
                try:
                    await client.parse(text)
                except NluUnavailable:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "n": len(latencies),
        "errors": errors,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "rps": len(latencies) / elapsed,
    }


def run(urls: Sequence[str], requests: int, concurrency: int) -> None:
    rows = []
    configs = [("1 process", list(urls[:1]))]
    if len(urls) > 1:
        configs.append((f"{len(urls)} processes", list(urls)))
    for label, subset in configs:
        for conc in sorted({1, concurrency}):
            r = asyncio.run(measure(subset, requests, conc))
            rows.append((label, conc, r))
    print()
    print(f"{'Rasa':<14}{'conc':>6}{'parses':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'parses/s':>10}")
    for label, conc, r in rows:
        print(f"{label:<14}{conc:>6}{int(r['n']):>8}{int(r['errors']):>8}{r['p50_ms']:>9.1f}"
              f"{r['p99_ms']:>9.1f}{r['rps']:>10.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--url", action="append", help="use running Rasa servers instead")
    args = parser.parse_args(argv)
    if args.url:
        run(args.url, args.requests, args.concurrency)
        return 0
    settings = NluSettings.from_mapping(
        {"data_path": str(ROOT / "nlu_data"), "venv_path": str(ROOT / "var/rasa/venv"),
         "models_path": str(ROOT / "var/rasa/models")}
    )
    service.install(settings)
    model = service.train(settings)
    with ExitStack() as stack:
        ports = [service.free_port(), service.free_port()]
        print(f"starting 2 Rasa processes on ports {ports} (about 40 s) ...", file=sys.stderr)
        servers = stack.enter_context(service.running_servers(settings, model, ports, out=sys.stderr))
        run([s.url for s in servers], args.requests, args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
