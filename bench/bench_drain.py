"""Conversation drain: how fast the gateway answers a burst of distinct customers.

Run: ``python bench/bench_drain.py`` (needs redis-server and the test extra). It starts
a private Redis and MongoDB-protocol server, a fake WeChat API in this process and the
gateway (one ``kefu run``, or with ``--processes K`` one ``--role web`` plus K
``--role worker`` processes) with NLU and speech off. Then it posts ``--messages``
distinct customers' text messages through the real webhook as fast as they are
acknowledged (``--concurrency`` connections) and waits until every customer has had a
reply on the fake API.

It prints: the ack rate, answered messages per second (first POST to last reply), the
MongoDB commands the gateway sent per message, by name (a PyMongo command listener
inside the gateway, loaded through ``bench/drain_probe/sitecustomize.py``), and CPU
milliseconds per message of the gateway processes, the MongoDB-protocol server and
Redis (from /proc), with the load average.

The MongoDB URL carries ``retryWrites=false`` as the embedded server's does
(``--retry-writes`` turns the driver's default back on). ``--source DIR`` runs the
gateway from another checkout (a "before" figure from main) with this benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import ACCOUNT, stop, wait_log  # noqa: E402
from bench.gateway_stack import start_stores  # noqa: E402
from channels.wechat.simulator import signed_request, text_xml  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402

PROBE_DIR = ROOT / "bench" / "drain_probe"
TICKS = os.sysconf("SC_CLK_TCK")
PHRASES = ["你好", "hello, is anyone there?", "我的订单到哪了", "thanks a lot", "请问营业时间", "my XK-8800 is not cooling"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (works for processes we did not write)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Gateway:
    procs: list[subprocess.Popen[bytes]]
    port: int
    probe: Path

    def commands(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for proc in self.procs:
            path = Path(f"{self.probe}.{proc.pid}.json")
            if path.exists():
                total.update(json.loads(path.read_text())["commands"])
        return total

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)


def start_gateway(tmp: Path, source: Path, cfg: dict[str, Any], processes: int, profile: Path | None) -> Gateway:
    (tmp / "kefu.yml").write_text(yaml.safe_dump(cfg))
    probe = tmp / "probe"
    env = {**os.environ, "PYTHONPATH": f"{PROBE_DIR}{os.pathsep}{source}", "KEFU_DRAIN_PROBE": str(probe)}
    if profile is not None:
        env["KEFU_DRAIN_PROFILE"] = str(profile.resolve())
    roles = ["all"] if processes == 0 else ["web", *["worker"] * processes]
    procs = []
    for i, role in enumerate(roles):
        log = tmp / f"gateway{i}.log"
        argv = [sys.executable, "-m", "bot.cli", "--config", str(tmp / "kefu.yml"), "run", "--role", role]
        procs.append(subprocess.Popen(argv, cwd=source, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
    for i, proc in enumerate(procs):
        wait_log(tmp / f"gateway{i}.log", "gateway ready" if roles[i] != "worker" else "worker running", proc)
    wait_port(cfg["http"]["port"], procs[0], 30)
    return Gateway(procs, cfg["http"]["port"], probe)


async def drain(gateway: Gateway, fake: Any, users: list[str], concurrency: int, first_id: int) -> tuple[float, float, int]:
    """Post one message per user; (seconds until all were acknowledged, until all
    answered, 503 answers retried as the platform would)."""
    import aiohttp

    xmls = [text_xml(u, PHRASES[i % len(PHRASES)], first_id + i) for i, u in enumerate(users)]
    requests = [(xml, *signed_request(ACCOUNT, xml)) for xml in xmls]
    waiting = set(users)
    seen = len(fake.sent)
    url = f"http://127.0.0.1:{gateway.port}/wechat/bench"
    todo = iter(requests)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        retried = 0

        async def poster() -> None:
            nonlocal retried
            for xml, query, body in todo:
                while True:
                    async with session.post(url, params=query, data=body) as resp:
                        await resp.read()
                    if resp.status == 200:
                        break
                    if resp.status != 503:
                        raise RuntimeError(f"webhook answered {resp.status}")
                    # An overloaded gateway: retry later, signed afresh, as WeChat does
                    # (same MsgId, so the gateway drops it if the first one got in).
                    retried += 1
                    await asyncio.sleep(0.2)
                    query, body = signed_request(ACCOUNT, xml)

        t0 = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        acked = time.perf_counter() - t0
        deadline = time.monotonic() + max(120.0, len(users) / 5)
        while waiting:
            for sent in fake.sent[seen:]:
                waiting.discard(sent.get("touser"))
            seen = len(fake.sent)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(waiting)} of {len(users)} customers got no reply in time")
            await asyncio.sleep(0.002)
        answered = time.perf_counter() - t0
    return acked, answered, retried


WRITES = ("update", "insert", "delete")


async def settled(gateway: Gateway, quiet_s: float = 0.6) -> Counter[str]:
    """The command counts once the writes stopped moving (sent marks land after the
    sends). Reads and pings go on meanwhile: the health monitor and periodic jobs."""
    last = gateway.commands()
    still = time.monotonic()
    while time.monotonic() - still < quiet_s:
        await asyncio.sleep(0.1)
        now = gateway.commands()
        if any(now[w] != last[w] for w in WRITES):
            still = time.monotonic()
        last = now
    return last


async def run(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from aiohttp import web

    from channels.wechat.fake_api import FakeWeChatAPI

    stores, redis_port, mongo_port = start_stores(tmp)
    fake = FakeWeChatAPI()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    gateway: Gateway | None = None
    rows = []
    try:
        await asyncio.to_thread(wait_port, mongo_port, stores[1], 60)
        retry = "true" if args.retry_writes else "false"
        cfg = {
            "http": {"host": "127.0.0.1", "port": free_port()},
            "redis_url": f"redis://127.0.0.1:{redis_port}/0",
            "mongo_url": f"mongodb://127.0.0.1:{mongo_port}/bench?retryWrites={retry}",
            "nlu": {"enabled": False},
            "speech": {"enabled": False},
            "pipeline": {"workers": args.workers},
            "channels": {"wechat": [{**ACCOUNT, "api_base_url": f"http://127.0.0.1:{fake_port}"}]},
        }
        gateway = await asyncio.to_thread(start_gateway, tmp, args.source, cfg, args.processes, args.profile)
        await drain(gateway, fake, [f"oWarm{i}" for i in range(40)], 4, 8_000_000_000)
        for r in range(args.rounds):
            await settled(gateway)
            users = [f"oDrain{r}x{i}" for i in range(args.messages)]
            commands0, cpu0 = gateway.commands(), gateway.cpu()
            stores0 = [cpu_seconds(p.pid) for p in stores]
            acked, answered, retried = await drain(gateway, fake, users, args.concurrency, 8_100_000_000 + r * 1_000_000)
            cpu1 = gateway.cpu()
            stores1 = [cpu_seconds(p.pid) for p in stores]
            commands = await settled(gateway)
            commands.subtract(commands0)
            n = len(users)
            rows.append({
                "round": r + 1, "messages": n, "retried_503": retried, "ack_per_s": n / acked, "answered_per_s": n / answered,
                "commands": {k: v / n for k, v in sorted(commands.items()) if v},
                "gateway_cpu_ms": (cpu1 - cpu0) * 1000 / n,
                "mongo_cpu_ms": (stores1[1] - stores0[1]) * 1000 / n,
                "redis_cpu_ms": (stores1[0] - stores0[0]) * 1000 / n,
                "load": os.getloadavg(),
            })
    finally:
        for proc in (gateway.procs if gateway else []) + stores:
            stop(proc)
        await runner.cleanup()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="distinct customers per round, one message each")
    parser.add_argument("--concurrency", type=int, default=16, help="webhook POSTs in flight")
    parser.add_argument("--rounds", type=int, default=1, help="drains one after another on the same stores")
    parser.add_argument("--workers", type=int, default=1, help="inbound workers per gateway process (pipeline.workers)")
    parser.add_argument("--processes", type=int, default=0, help="0: one `kefu run`; K: one --role web and K --role worker")
    parser.add_argument("--retry-writes", action="store_true", help="keep the driver's retryable writes on")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose gateway runs")
    parser.add_argument("--profile", type=Path, help="cProfile the gateway processes into PATH.<pid>.prof")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-drain-") as tmp:
        rows = asyncio.run(run(args, Path(tmp)))
    layout = "one kefu run" if args.processes == 0 else f"web + {args.processes} worker processes"
    print(f"Conversation drain: {layout}, {args.workers} worker task(s) each, NLU and speech off, "
          f"retryWrites={'on' if args.retry_writes else 'off'}, source {args.source}")
    print(f"{'round':>5} {'msgs':>6} {'ack/s':>7} {'answered/s':>10} {'cmds/msg':>8} {'gw ms/msg':>9} {'mongo ms':>8} {'redis ms':>8}  load")
    for row in rows:
        per = sum(row["commands"].values())
        load = " ".join(f"{x:.2f}" for x in row["load"])
        print(f"{row['round']:>5} {row['messages']:>6} {row['ack_per_s']:>7.0f} {row['answered_per_s']:>10.1f} {per:>8.2f} "
              f"{row['gateway_cpu_ms']:>9.2f} {row['mongo_cpu_ms']:>8.2f} {row['redis_cpu_ms']:>8.2f}  {load}")
        print("      commands/msg: " + ", ".join(f"{k} {v:.2f}" for k, v in row["commands"].items())
              + (f"; {row['retried_503']} webhook 503s retried" if row["retried_503"] else ""))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
