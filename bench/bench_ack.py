"""Benchmark of the WeChat webhook ack path and of text-in -> reply-out.

Run: ``python bench/bench_ack.py`` (needs redis-server, wrk and taskset on PATH; the
test extra installed). It starts its own Redis and MongoDB-protocol server pinned to
core 1, the gateway (``--role web``) pinned to core 0, and drives it with wrk on core 1,
next to a bare aiohttp handler doing only verify + decrypt + parse with the same code
(the floor), in the same run. Then it measures text in -> customer-service send through
a whole gateway (``--role all``) and a fake WeChat API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import floor_server  # noqa: E402
from channels.wechat.simulator import signed_request, text_xml  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402

ACCOUNT = {
    "account": "bench",
    "app_id": "wx0123456789abcdef",
    "app_secret": "bench-secret",
    "token": "benchtoken",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}
TWO_CORES = (os.cpu_count() or 1) >= 2


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if TWO_CORES else argv


def make_requests(path: Path, count: int, first_id: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            xml = text_xml(f"oBench{i % 5000}", "我的XK-8800不制冷了，麻烦尽快安排师傅上门", first_id + i)
            query, body = signed_request(ACCOUNT, xml)
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            out.write(f"/wechat/bench?{qs}\t{body.decode()}\n")


def run_wrk(port: int, concurrency: int, duration: int, requests: Path) -> dict[str, float]:
    env = {**os.environ, "KEFU_BENCH_REQUESTS": str(requests)}
    argv = pinned(1, ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(ROOT / "bench" / "wrk_requests.lua"), f"http://127.0.0.1:{port}"])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    return {"rps": rps, "total": total, "p50": lat["50"], "p99": lat["99"], "errors": int(non2xx.group(1)) if non2xx else 0}


def _ms(value: str) -> float:
    num = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(str(re.match(r"[\d.]+", value).group(0))):]  # type: ignore[union-attr]
    return num * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def start(argv: list[str], log: Path, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_stores(tmp: Path, mongo_storage: str = ":memory:") -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """A private redis-server and MongoDB-protocol server on core 1; their URLs."""
    redis_port, mongo_port = free_port(), free_port()
    redis = start(pinned(1, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]), tmp / "redis.log")
    mongo = start(pinned(1, [str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", mongo_storage, "--log-level", "WARNING"]), tmp / "mongo.log")
    wait_port(redis_port, redis, 10)
    wait_port(mongo_port, mongo, 60)
    return [redis, mongo], f"redis://127.0.0.1:{redis_port}/0", f"mongodb://127.0.0.1:{mongo_port}/bench"


def wait_log(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name}: {needle!r} not seen:\n{path.read_text()[-2000:]}")
        time.sleep(0.1)


async def end_to_end(gateway_port: int, fake: Any, count: int, concurrency: int) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            user = f"oE2E{concurrency}x{i}"
            query, body = signed_request(ACCOUNT, text_xml(user, "hello, is anyone there?", 9_000_000_000 + concurrency * 100_000 + i))
            async with sem:
                t0 = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{gateway_port}/wechat/bench", params=query, data=body) as resp:
                    assert resp.status == 200, await resp.text()
                while not fake.sent_to(user):
                    await asyncio.sleep(0.0005)
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run_e2e(tmp: Path, redis_url: str, mongo_url: str, count: int) -> dict[int, list[float]]:
    from aiohttp import web

    from channels.wechat.fake_api import FakeWeChatAPI

    fake = FakeWeChatAPI()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    port = free_port()
    cfg = {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": redis_url,
        "mongo_url": mongo_url + "_e2e",
        "channels": {"wechat": [{**ACCOUNT, "api_base_url": f"http://127.0.0.1:{fake_port}"}]},
    }
    config = tmp / "e2e.yml"
    config.write_text(yaml.safe_dump(cfg))
    log = tmp / "gateway-e2e.log"
    proc = start([sys.executable, "-m", "bot.cli", "--config", str(config), "run"], log)
    try:
        await asyncio.to_thread(wait_log, log, "gateway ready", proc)
        await asyncio.to_thread(wait_port, port, proc, 30)
        await end_to_end(port, fake, 20, 1)  # warm-up: token, connections, indexes
        results = {c: await end_to_end(port, fake, count, c) for c in (1, 8)}
    finally:
        stop(proc)
        await runner.cleanup()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=90_000, help="distinct signed requests per gateway run")
    parser.add_argument("--e2e", type=int, default=300, help="messages per end-to-end run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp_name:
        tmp = Path(tmp_name)
        procs, redis_url, mongo_url = start_stores(tmp)
        try:
            print(f"generating {2 * args.requests} signed+encrypted requests ...", file=sys.stderr)
            files = {c: tmp / f"req{c}.txt" for c in (16, 64)}
            make_requests(files[16], args.requests, 1)
            make_requests(files[64], args.requests, 10_000_000)

            floor_port = free_port()
            floor = start(pinned(0, floor_server.command("wechat", floor_port, ACCOUNT)), tmp / "floor.log")
            procs.append(floor)
            wait_port(floor_port, floor, 30)
            rows: list[tuple[str, int, dict[str, float]]] = []
            for c in (16, 64):
                run_wrk(floor_port, c, 2, files[c])  # warm-up
                rows.append(("floor: verify+decrypt+parse", c, run_wrk(floor_port, c, args.duration, files[c])))
            stop(floor)

            port = free_port()
            cfg = {
                "http": {"host": "127.0.0.1", "port": port},
                "redis_url": redis_url,
                "mongo_url": mongo_url,
                "channels": {"wechat": [{**ACCOUNT, "api_base_url": "http://127.0.0.1:9"}]},
            }
            config = tmp / "kefu.yml"
            config.write_text(yaml.safe_dump(cfg))
            gateway = start(pinned(0, [sys.executable, "-m", "bot.cli", "--config", str(config), "run", "--role", "web"]), tmp / "gateway.log")
            procs.append(gateway)
            wait_log(tmp / "gateway.log", "gateway ready", gateway)
            wait_port(port, gateway, 30)
            import redis as redis_lib

            r = redis_lib.Redis.from_url(redis_url)
            for c in (16, 64):
                r.flushdb()
                run_wrk(port, c, 2, files[c])  # warm-up; then start from a clean dedup state
                r.flushdb()
                result = run_wrk(port, c, args.duration, files[c])
                result["queued"] = r.xlen("kefu:inbound")
                rows.append(("gateway: + dedup + XADD", c, result))
            stop(gateway)
            r.flushdb()

            e2e = asyncio.run(run_e2e(tmp, redis_url, mongo_url, args.e2e))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    stop(proc)

    print()
    print(f"WeChat safe-mode ack path, gateway pinned to core 0, wrk + Redis on core 1 ({os.cpu_count()} cores)")
    print(f"{'server':32} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'us/msg':>8} {'errors':>7} {'queued':>8}")
    floor_cost = {c: 1e6 / res["rps"] for name, c, res in rows if name.startswith("floor")}
    for name, c, res in rows:
        queued = f"{int(res['queued']):>8}" if "queued" in res else f"{'':>8}"
        print(f"{name:32} {c:>5} {res['rps']:>9.0f} {res['p50']:>8.2f} {res['p99']:>8.2f} {1e6 / res['rps']:>8.1f} {int(res['errors']):>7} {queued}")
    for name, c, res in rows:
        if name.startswith("gateway"):
            if res["total"] > args.requests:
                print(f"  note: c={c} sent {int(res['total'])} requests > {args.requests} distinct; the rest hit dedup")
            print(f"  c={c}: per-message cost {1e6 / res['rps'] / floor_cost[c]:.2f}x the floor")
    print()
    print("Text in -> customer-service send on the fake WeChat API (gateway --role all, unpinned)")
    print(f"{'concurrency':>12} {'messages':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for c, lat in e2e.items():
        print(f"{c:>12} {len(lat):>9} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} {statistics.mean(lat):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
