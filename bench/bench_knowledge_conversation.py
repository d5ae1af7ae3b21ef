"""Reply latency with knowledge answers in the loop, against the same gateway without.

Run: ``python bench/bench_knowledge_conversation.py`` after ``kefu nlu install && kefu nlu train``.
Starts the stack of ``bench_conversation`` twice (Redis, the MongoDB-protocol server,
one Rasa process, ``kefu run``, a fake WeChat API): once with ``knowledge.enabled:
false``, once with the knowledge base on and the demo base imported by ``kefu kb
import``. Both runs send the same messages: ``bench_conversation``'s mix (greetings,
repair reports, status, hand-off, one out-of-scope question in six) followed by
customer-service questions the knowledge base answers (invoice, filter, hours,
warranty). Each is timed from the webhook POST to the customer-service send.

``--rounds N`` alternates the two N times (off, on, off, on ...), so that the shared
machine's changing load falls on both alike; each run prints the load average it ran
at, and the ratios are over all rounds' messages together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import pct  # noqa: E402
from bench.bench_conversation import PHRASES, drive  # noqa: E402
from bench.gateway_stack import gateway_stack  # noqa: E402

QUESTIONS = ["发票怎么开？", "how do I clean the filter?", "你们周末上班吗？", "XK-8800保修几年？", "what is your phone number?"]
MIX = [*PHRASES, *QUESTIONS]


async def one_run(args: argparse.Namespace, tmp: Path, knowledge: bool) -> dict[int, list[float]]:
    config = {"speech": {"enabled": False}, "pipeline": {"workers": args.workers}, "knowledge": {"enabled": knowledge}}
    async with gateway_stack(tmp, config=config, require_nlu=True, nlu_url=args.nlu_url) as stack:
        if knowledge:
            imported = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bot.cli", "--config", str(tmp / "kefu.yml"), "kb", "import",
                 str(ROOT / "knowledge/data/demo.md"), "--no-progress"],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            print(imported.stdout.strip(), file=sys.stderr)
        tag = "kb" if knowledge else "plain"
        await drive(stack.port, stack.fake, 22, 1, f"warm{tag}", MIX)  # builds the index; its users do not count later
        return {c: await drive(stack.port, stack.fake, args.messages, c, tag, MIX) for c in (1, 8)}


async def run(args: argparse.Namespace) -> dict[str, dict[int, list[float]]]:
    out: dict[str, dict[int, list[float]]] = {"without knowledge": {1: [], 8: []}, "with knowledge": {1: [], 8: []}}
    for round_no in range(args.rounds):
        for name, on in (("without knowledge", False), ("with knowledge", True)):
            load = os.getloadavg()[0]
            with tempfile.TemporaryDirectory(prefix="kefu-bench-kbconv-") as tmp:
                got = await one_run(args, Path(tmp), on)
            print(f"round {round_no + 1} {name}: load average {load:.1f} -> {os.getloadavg()[0]:.1f}; "
                  + ", ".join(f"c{c} p50 {pct(lat, 50):.1f} ms" for c, lat in got.items()), file=sys.stderr)
            for c, lat in got.items():
                out[name][c] += lat
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=110)
    parser.add_argument("--workers", type=int, default=2, help="inbound workers in the gateway process")
    parser.add_argument("--rounds", type=int, default=1, help="alternate without/with this many times")
    parser.add_argument("--nlu-url", help="a running Rasa for every run (default: start one per run)")
    args = parser.parse_args()
    results: Any = asyncio.run(run(args))
    print("Text in -> reply out, Rasa NLU, gateway --role all, fake WeChat API; "
          f"{len(PHRASES)} everyday messages + {len(QUESTIONS)} knowledge questions in turn")
    print(f"{'run':>18} {'concurrency':>12} {'messages':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, by_c in results.items():
        for c, lat in by_c.items():
            print(f"{name:>18} {c:>12} {len(lat):>9} {pct(lat, 50):>8.1f} {pct(lat, 95):>8.1f} {pct(lat, 99):>8.1f} "
                  f"{statistics.mean(lat):>8.1f}")
    base, kb = results["without knowledge"], results["with knowledge"]
    for c in base:
        print(f"with / without, concurrency {c}: p50 {pct(kb[c], 50) / pct(base[c], 50):.2f}x, "
              f"mean {statistics.mean(kb[c]) / statistics.mean(base[c]):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
