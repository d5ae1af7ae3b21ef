"""Benchmark of the DingTalk robot callback ack path (verify sign, parse JSON, dedup, XADD).

Run: ``python bench/bench_dingtalk.py`` (needs redis-server, wrk and taskset on PATH; the
test extra installed). Reuses ``bench_ack.py``'s machinery: its own Redis and
MongoDB-protocol server pinned to core 1, the gateway (``--role web``) pinned to core 0,
wrk on core 1 replaying distinct signed robot messages (each its own msgId, so dedup
never short-cuts them) at concurrency 16 and 64. ``queued`` is the inbound stream's
length afterwards: every acknowledged message must be in it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_ack  # noqa: E402  (shared process machinery)

from channels.dingtalk.simulator import robot_message  # noqa: E402
from channels.dingtalk.sign import compute_sign  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402

ACCOUNT = {"account": "bench", "app_key": "dingbench", "app_secret": "bench-app-secret", "robot_code": "dingbench", "mode": "http"}

# Lines are "<timestamp>\t<sign>\t<json body>"; the signature headers ride on each request.
LUA = r"""
local requests = {}
local index = 0
function init(args)
  for line in io.lines(os.getenv("KEFU_BENCH_REQUESTS")) do
    local a = string.find(line, "\t", 1, true)
    local b = string.find(line, "\t", a + 1, true)
    requests[#requests + 1] = wrk.format("POST", "/dingtalk/bench",
      {["Content-Type"] = "application/json", ["timestamp"] = string.sub(line, 1, a - 1), ["sign"] = string.sub(line, a + 1, b - 1)},
      string.sub(line, b + 1))
  end
end
function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end
"""


def make_requests(path: Path, count: int, prefix: str) -> None:
    timestamp = str(int(time.time() * 1000))
    sign = compute_sign(timestamp, ACCOUNT["app_secret"])
    with path.open("w") as out:
        for i in range(count):
            data = robot_message(f"staff{i % 5000}", text="打印机卡纸了，麻烦尽快安排师傅", msg_id=f"{prefix}{i}", session_webhook="https://oapi.dingtalk.com/robot/sendBySession?session=x")
            out.write(f"{timestamp}\t{sign}\t{json.dumps(data, ensure_ascii=False)}\n")


def run_wrk(port: int, concurrency: int, duration: int, requests: Path, lua: Path) -> dict[str, float]:
    env = {**os.environ, "KEFU_BENCH_REQUESTS": str(requests)}
    argv = bench_ack.pinned(1, ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(lua), f"http://127.0.0.1:{port}"])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = {m.group(1): bench_ack._ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    return {"rps": rps, "total": total, "p50": lat["50"], "p99": lat["99"], "errors": int(non2xx.group(1)) if non2xx else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=60_000, help="distinct signed requests per concurrency")
    args = parser.parse_args()
    rows: list[tuple[int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="kefu-bench-ding-") as tmp_name:
        tmp = Path(tmp_name)
        lua = tmp / "ding.lua"
        lua.write_text(LUA)
        redis_port, mongo_port = free_port(), free_port()
        redis = bench_ack.start(bench_ack.pinned(1, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]), tmp / "redis.log")
        mongo = bench_ack.start(bench_ack.pinned(1, [str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", ":memory:", "--log-level", "WARNING"]), tmp / "mongo.log")
        procs = [redis, mongo]
        try:
            wait_port(redis_port, redis, 10)
            wait_port(mongo_port, mongo, 60)
            redis_url, mongo_url = f"redis://127.0.0.1:{redis_port}/0", f"mongodb://127.0.0.1:{mongo_port}/bench"
            files = {c: tmp / f"req{c}.txt" for c in (16, 64)}
            for c, path in files.items():
                make_requests(path, args.requests, f"msgbench{c}x")
            port = free_port()
            cfg = {
                "http": {"host": "127.0.0.1", "port": port},
                "redis_url": redis_url,
                "mongo_url": mongo_url,
                "nlu": {"enabled": False},
                "speech": {"enabled": False},
                "channels": {"dingtalk": [{**ACCOUNT, "api_base_url": "http://127.0.0.1:9"}]},
            }
            config = tmp / "kefu.yml"
            config.write_text(yaml.safe_dump(cfg))
            gateway = bench_ack.start(bench_ack.pinned(0, [sys.executable, "-m", "bot.cli", "--config", str(config), "run", "--role", "web"]), tmp / "gateway.log")
            procs.append(gateway)
            bench_ack.wait_log(tmp / "gateway.log", "gateway ready", gateway)
            wait_port(port, gateway, 30)
            import redis as redis_lib

            r = redis_lib.Redis.from_url(redis_url)
            for c in (16, 64):
                r.flushdb()
                run_wrk(port, c, 2, files[c], lua)  # warm-up; then start from a clean dedup state
                r.flushdb()
                result = run_wrk(port, c, args.duration, files[c], lua)
                result["queued"] = r.xlen("kefu:inbound")
                rows.append((c, result))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    bench_ack.stop(proc)
    print()
    print(f"DingTalk robot callback ack path (verify sign + parse + dedup + XADD on real Redis), gateway on core 0, wrk + Redis on core 1 ({os.cpu_count()} cores)")
    print(f"{'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'acked':>8} {'queued':>8}")
    for c, res in rows:
        print(f"{c:>5} {res['rps']:>9.0f} {res['p50']:>8.2f} {res['p99']:>8.2f} {int(res['errors']):>7} {int(res['total'] - res['errors']):>8} {int(res['queued']):>8}")
    wrapped = [c for c, res in rows if res["total"] > args.requests]
    if wrapped:
        print(f"note: at concurrency {wrapped} wrk replayed requests (more than --requests); replays are deduplicated, so queued < acked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
