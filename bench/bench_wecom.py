"""Benchmark of the WeCom and WeCom KF webhook ack paths (verify, decrypt, parse, dedup, XADD).

Run: ``python bench/bench_wecom.py`` (needs redis-server, wrk and taskset on PATH; the
test extra installed). Reuses ``bench_ack.py``'s machinery: its own Redis and
MongoDB-protocol server pinned to core 1, the gateway (``--role web``) pinned to core 0,
wrk on core 1 replaying distinct pre-signed, pre-encrypted requests. Rows:

- floor: a bare aiohttp handler calling ``WeComChannel.receive`` (verify + decrypt +
  parse, no I/O), the cost the gateway cannot go below;
- wecom: the real gateway, ``POST /wecom/{account}``, plus dedup + enqueue on Redis;
- wecom_kf: the real gateway taking ``kf_msg_or_event`` callbacks (dedup by Token).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_ack  # noqa: E402  (shared wrk/process machinery)
from bench import floor_server  # noqa: E402

from channels.wecom.simulator import signed_callback, text_xml  # noqa: E402
from channels.wecom_kf.simulator import signed_kf_callback  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402

CORP_ID = "ww0123456789abcdef"
WECOM = {
    "account": "bench",
    "corp_id": CORP_ID,
    "agent_id": 1000002,
    "secret": "bench-secret",
    "token": "benchtoken",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "api_base_url": "http://127.0.0.1:9",
}
WECOM_KF = {**WECOM, "secret": "bench-kf-secret", "token": "benchkftoken"}
WECOM_KF.pop("agent_id")

def make_wecom_requests(path: Path, count: int, first_id: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            xml = text_xml(CORP_ID, f"user{i % 5000}", "打印机卡纸了，麻烦派人来看看", first_id + i)
            query, body = signed_callback(WECOM, xml)
            out.write(f"/wecom/bench?{'&'.join(f'{k}={v}' for k, v in query.items())}\t{body.decode()}\n")


def make_kf_requests(path: Path, count: int, first: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            # Each callback has its own one-time Token, which is its dedup key.
            query, body = signed_kf_callback(WECOM_KF, f"wkBench{i % 8}", f"ENCBENCH{first + i:012d}")
            out.write(f"/wecom_kf/bench?{'&'.join(f'{k}={v}' for k, v in query.items())}\t{body.decode()}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=60_000, help="distinct signed requests per run")
    args = parser.parse_args()
    pinned, start, stop, wait_log, run_wrk = bench_ack.pinned, bench_ack.start, bench_ack.stop, bench_ack.wait_log, bench_ack.run_wrk
    levels = (16, 64)
    rows: list[tuple[str, int, dict[str, float]]] = []

    with tempfile.TemporaryDirectory(prefix="kefu-bench-wecom-") as tmp_name:
        tmp = Path(tmp_name)
        redis_port, mongo_port = free_port(), free_port()
        redis = start(pinned(1, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]), tmp / "redis.log")
        mongo = start(pinned(1, [str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", ":memory:", "--log-level", "WARNING"]), tmp / "mongo.log")
        procs = [redis, mongo]
        try:
            wait_port(redis_port, redis, 10)
            wait_port(mongo_port, mongo, 60)
            redis_url, mongo_url = f"redis://127.0.0.1:{redis_port}/0", f"mongodb://127.0.0.1:{mongo_port}/bench"
            print(f"generating {4 * args.requests} signed+encrypted requests ...", file=sys.stderr)
            wecom_files = {c: tmp / f"wecom{c}.txt" for c in levels}
            kf_files = {c: tmp / f"kf{c}.txt" for c in levels}
            for n, c in enumerate(levels):
                make_wecom_requests(wecom_files[c], args.requests, 1 + n * 10_000_000)
                make_kf_requests(kf_files[c], args.requests, n * 10_000_000)

            floor_port = free_port()
            floor = start(pinned(0, floor_server.command("wecom", floor_port, WECOM)), tmp / "floor.log")
            procs.append(floor)
            wait_port(floor_port, floor, 30)
            for c in levels:
                run_wrk(floor_port, c, 2, wecom_files[c])  # warm-up
                rows.append(("floor: verify+decrypt+parse", c, run_wrk(floor_port, c, args.duration, wecom_files[c])))
            stop(floor)

            port = free_port()
            cfg = {
                "http": {"host": "127.0.0.1", "port": port},
                "redis_url": redis_url,
                "mongo_url": mongo_url,
                "nlu": {"enabled": False},  # the ack path never calls NLU; keep Rasa out of the run
                "speech": {"enabled": False},
                "channels": {"wecom": [WECOM], "wecom_kf": [WECOM_KF]},
            }
            config = tmp / "kefu.yml"
            config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
            gateway = start(pinned(0, [sys.executable, "-m", "bot.cli", "--config", str(config), "run", "--role", "web"]), tmp / "gateway.log")
            procs.append(gateway)
            wait_log(tmp / "gateway.log", "gateway ready", gateway)
            wait_port(port, gateway, 30)
            import redis as redis_lib

            r = redis_lib.Redis.from_url(redis_url)
            for label, files in (("wecom: + dedup + XADD", wecom_files), ("wecom_kf callback: + dedup + XADD", kf_files)):
                for c in levels:
                    r.flushdb()
                    run_wrk(port, c, 2, files[c])  # warm-up; then start from a clean dedup state
                    r.flushdb()
                    result = run_wrk(port, c, args.duration, files[c])
                    result["queued"] = r.xlen("kefu:inbound")
                    rows.append((label, c, result))
            stop(gateway)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    stop(proc)

    print()
    print(f"WeCom ack path, gateway pinned to core 0, wrk + Redis on core 1 ({os.cpu_count()} cores), {args.duration} s per row")
    print(f"{'server':36} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'us/msg':>8} {'errors':>7} {'queued':>8}")
    for name, c, res in rows:
        queued = f"{int(res['queued']):>8}" if "queued" in res else f"{'':>8}"
        print(f"{name:36} {c:>5} {res['rps']:>9.0f} {res['p50']:>8.2f} {res['p99']:>8.2f} {1e6 / res['rps']:>8.1f} {int(res['errors']):>7} {queued}")
    for name, c, res in rows:
        if "queued" in res and res["total"] > args.requests:
            print(f"  note: {name} c={c} sent {int(res['total'])} requests > {args.requests} distinct; the rest hit dedup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
