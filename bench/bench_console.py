"""Benchmark of the console: inbox render, live-update latency, webhook ack under SSE load.

Run: ``python bench/bench_console.py`` (needs redis-server, wrk and taskset on PATH and
the test extra). It starts its own Redis and MongoDB-protocol server, then:

1. Inbox render: 10,000 conversations in the stores (200 waiting, 50 with the agent);
   an agent's ``GET /admin/inbox``, sequentially; p50/p95 and Redis commands per render.
2. Customer message -> visible in an agent page: two web processes (one also runs the
   workers), 100 open ``/admin/events`` streams split between them, each on a claimed
   conversation; a message posted to the signed webhook is timed until its event
   arrives on that conversation's stream (in either process).
3. Webhook ack path: wrk against a ``--role web`` gateway pinned to core 0, without and
   then with 200 open inbox streams. In both runs this process publishes 200 events a
   second, 10 of them about the queue (a waiting customer writing, a claim), which the
   gateway relays to every open inbox stream (``--events``, ``--queue-events``). No
   worker runs here:
   its MongoDB writes would load the core wrk and the stores share and blur the
   comparison. Before the wrk runs, the gateway's CPU per second with no requests, with
   and without the 200 streams: the relay's own cost, which the machine's other load
   disturbs least. ``--only-ack`` runs this part alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import load_average  # noqa: E402
from bench.bench_ack import ACCOUNT, TWO_CORES, make_requests, pct, pinned, run_wrk, start, start_stores, stop, wait_log  # noqa: E402
from channels.wechat.simulator import signed_request, text_xml  # noqa: E402
from tests.services import free_port, wait_port  # noqa: E402

PASSWORD = "bench password 1"
AGENT = "bench"


def gateway_config(port: int, redis_url: str, mongo_url: str, fake_port: int) -> dict[str, Any]:
    return {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "console": {"signin_per_address": 10_000},
        "channels": {"wechat": [{**ACCOUNT, "api_base_url": f"http://127.0.0.1:{fake_port}"}]},
    }


def run_gateway(tmp: Path, name: str, cfg: dict[str, Any], role: str, core: int | None = None) -> Any:
    config = tmp / f"{name}.yml"
    config.write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "bot.cli", "--config", str(config), "run", "--role", role]
    proc = start(pinned(core, argv) if core is not None else argv, tmp / f"{name}.log")
    wait_log(tmp / f"{name}.log", "gateway ready", proc)
    if role != "worker":
        wait_port(cfg["http"]["port"], proc, 30)
    return proc


async def seed(redis_url: str, mongo_url: str, conversations: int, waiting: int, mine: int) -> list[str]:
    """Conversations as the worker and hand-off leave them; returns those the agent owns."""
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

    from admin.roles import Role
    from admin.users import UserStore
    from bot.conversation.handoff import WAITING
    from bot.conversation.state import AGENT_PREFIX, QUEUE, STATE_PREFIX, ConversationState
    from bot.store import MessageStore

    redis = Redis.from_url(redis_url)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    db = mongo.get_default_database()
    await MessageStore(db).ensure_indexes()
    await UserStore(db).create(AGENT, Role.AGENT, PASSWORD)
    now = time.time()
    owned: list[str] = []
    docs, pipe = [], redis.pipeline(transaction=False)
    for i in range(conversations):
        sender = f"oSeed{i}"
        cid = f"wechat:{ACCOUNT['account']}:{sender}"
        owner = QUEUE if i < waiting else AGENT_PREFIX + AGENT if i < waiting + mine else "bot"
        state = ConversationState(cid, f"wechat:{ACCOUNT['account']}:{sender}", "wechat", ACCOUNT["account"], sender,
                                  owner=owner, handoff_reason="customer asked for a human" if owner == QUEUE else "",
                                  handoff_code="human_requested" if owner == QUEUE else "", updated_at=now - i)
        status = "waiting" if owner == QUEUE else "agent" if owner != "bot" else "bot"
        docs.append({"_id": cid, "state": json.loads(state.to_json()), "status": status, "owner": owner,
                     "customer": state.customer, "channel": "wechat", "account": ACCOUNT["account"], "last_at": now - i})
        pipe.set(STATE_PREFIX + cid, state.to_json())
        if owner == QUEUE:
            pipe.zadd(WAITING, {cid: now - 3600 + i})
        elif owner != "bot":
            owned.append(cid)
        if len(docs) == 1000:
            await db["conversations"].insert_many(docs)
            await pipe.execute()
            docs, pipe = [], redis.pipeline(transaction=False)
    if docs:
        await db["conversations"].insert_many(docs)
        await pipe.execute()
    await redis.aclose()
    await mongo.close()
    return owned


async def sign_in(http: Any, base: str) -> None:
    from tests.console.conftest import Browserless

    who = Browserless(base, http)
    resp = await who.sign_in(AGENT, PASSWORD)
    assert resp.status == 303, await resp.text()


async def redis_calls(redis_url: str) -> int:
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    stats: dict[str, Any] = await r.info("commandstats")
    await r.aclose()
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


async def inbox_render(base: str, redis_url: str, renders: int) -> tuple[list[float], float, int]:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await sign_in(http, base)
        for _ in range(20):  # warm-up
            async with http.get(base + "/admin/inbox") as resp:
                await resp.read()
        times: list[float] = []
        calls_before = await redis_calls(redis_url)
        for _ in range(renders):
            t0 = time.perf_counter()
            async with http.get(base + "/admin/inbox") as resp:
                body = await resp.read()
                assert resp.status == 200
            times.append((time.perf_counter() - t0) * 1000)
        per_render = (await redis_calls(redis_url) - calls_before) / renders
    return times, per_render, len(body)


class Streams:
    """Open /admin/events streams; records when each conversation's messages arrive."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.events = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, http: Any, url: str, *, parse: bool = True) -> None:
        resp = await http.get(url, headers={"Accept": "text/event-stream"}, timeout=None)
        assert resp.status == 200, await resp.text()
        await resp.content.readline()
        self.tasks.append(asyncio.create_task(self._read(resp) if parse else self._count(resp)))

    async def _count(self, resp: Any) -> None:
        # Only counts: parsing 200 streams here would take CPU from the server measured.
        while chunk := await resp.content.read(65536):
            self.events += chunk.count(b"\ndata: ")

    async def _read(self, resp: Any) -> None:
        async for raw in resp.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            self.events += 1
            data = json.loads(line[6:])
            for m in data.get("messages", ()):
                if m["direction"] == "in":
                    self.arrived.setdefault(m["text"], time.perf_counter())

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def live_latency(bases: list[str], webhook: str, owned: list[str], streams_count: int, messages: int) -> list[float]:
    import aiohttp

    streams = Streams()
    sessions = []
    try:
        for base in bases:
            http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            sessions.append(http)
            await sign_in(http, base)
        watched = owned[:streams_count]
        for i, cid in enumerate(watched):
            http, base = sessions[i % len(bases)], bases[i % len(bases)]
            await streams.open(http, f"{base}/admin/events?conversation={cid}")
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        post = sessions[0]
        rng = random.Random(7)
        for n in range(messages):
            cid = rng.choice(watched)
            sender = cid.rsplit(":", 1)[1]
            text = f"live {n} {cid}"
            query, body = signed_request(ACCOUNT, text_xml(sender, text, 7_000_000_000 + n))
            t0 = time.perf_counter()
            async with post.post(f"{webhook}/wechat/{ACCOUNT['account']}", params=query, data=body) as resp:
                assert resp.status == 200
            while text not in streams.arrived:
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError(f"message {n} never reached the page")
                await asyncio.sleep(0.001)
            latencies.append((streams.arrived[text] - t0) * 1000)
            await asyncio.sleep(0.05)  # about 20 customer messages a second
        return latencies
    finally:
        await streams.close()
        for http in sessions:
            await http.close()


async def publish_events(redis_url: str, waiting: list[str], per_second: int, queue_share: float, stop: asyncio.Event) -> int:
    """Events at a steady rate, as busy workers and agents produce them: ``queue_share``
    of them concern the queue (a waiting customer writes, so the inbox re-reads that
    row; or an agent claims, so the row goes); the rest are turns the bot handles,
    which the gateway receives and does not send to inbox pages."""
    from redis.asyncio import Redis

    from bot.conversation.events import ConversationEvent, ConversationEvents

    redis = Redis.from_url(redis_url)
    events = ConversationEvents(redis)
    sent = queue_events = 0
    every = max(1, round(1 / queue_share)) if queue_share > 0 else 0
    try:
        while not stop.is_set():
            if every and sent % every == 0:
                cid = waiting[queue_events % len(waiting)]
                queue_events += 1
                if queue_events % 2:
                    event = ConversationEvent("message", cid, owner="queue", messages=(f"{cid}:m{sent}",))
                else:
                    event = ConversationEvent("claimed", cid, owner="agent:someone", agent="someone")
            else:
                event = ConversationEvent("message", f"wechat:bench:oBot{sent}", owner="bot", messages=(f"m{sent}",))
            await events.publish(event)
            sent += 1
            await asyncio.sleep(1 / per_second)
    finally:
        await redis.aclose()
    return sent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured_wrk(pid: int, port: int, requests: Path, duration: int) -> dict[str, float]:
    """wrk's numbers plus the gateway's CPU per request: far steadier than throughput
    when other work shares the machine."""
    before = cpu_seconds(pid)
    result = run_wrk(port, 16, duration, requests)
    result["cpu_us"] = (cpu_seconds(pid) - before) / result["total"] * 1e6
    return result


async def relay_cpu(pid: int, base: str, seconds: int) -> list[tuple[float, float, str]]:
    """The gateway's CPU per second with no requests, with then without 200 open inbox
    streams, twice: what the relay itself costs, the least sensitive figure to the
    machine's other load (no throughput involved). Streams first: the runs without them
    follow within the minute a gateway keeps listening after its last page closed
    (``console.live_idle_s``), so both read the same events."""
    rounds = []
    for _ in range(2):
        load = load_average()
        streams, http = await open_inbox_streams(base, 200)
        try:
            await asyncio.sleep(1)
            before, t0 = cpu_seconds(pid), time.perf_counter()
            await asyncio.sleep(seconds)
            busy = (cpu_seconds(pid) - before) / (time.perf_counter() - t0)
        finally:
            await streams.close()
            await http.close()
        before, t0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(seconds)
        quiet = (cpu_seconds(pid) - before) / (time.perf_counter() - t0)
        rounds.append((quiet * 1000, busy * 1000, load))
    return rounds


async def open_inbox_streams(base: str, count: int) -> tuple[Streams, Any]:
    import aiohttp

    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=aiohttp.TCPConnector(limit=0))
    await sign_in(http, base)
    streams = Streams()
    for _ in range(count):
        await streams.open(http, base + "/admin/events", parse=False)
    return streams, http


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=300)
    parser.add_argument("--messages", type=int, default=300, help="customer messages timed to the agent page")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=40_000, help="distinct signed requests per ack run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating without/with runs of the ack path")
    parser.add_argument("--events", type=int, default=200, help="events/s published during the ack runs")
    parser.add_argument("--queue-events", type=int, default=10, help="of those, events/s about the queue (sent to inbox pages)")
    parser.add_argument("--only-ack", action="store_true", help="only part 3 (the webhook ack path with and without streams)")
    args = parser.parse_args()

    from aiohttp import web

    from channels.wechat.fake_api import FakeWeChatAPI

    with tempfile.TemporaryDirectory(prefix="kefu-bench-console-") as tmp_name:
        tmp = Path(tmp_name)
        procs, redis_url, mongo_url = start_stores(tmp)
        mongo_url += "?retryWrites=false"  # see NOTES: the embedded server slows down otherwise

        async def scenario() -> dict[str, Any]:
            fake = FakeWeChatAPI()
            runner = web.AppRunner(fake.app(), access_log=None)
            await runner.setup()
            fake_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", fake_port).start()
            out: dict[str, Any] = {}
            running: list[Any] = []
            try:
                print(f"seeding {args.conversations} conversations ...", file=sys.stderr)
                owned = await seed(redis_url, mongo_url, args.conversations, 200, 150)
                if not args.only_ack:
                    await render_and_latency(owned, fake_port, out, running)
                await ack_path(fake_port, out, running)
            finally:
                for proc in running:
                    stop(proc)
                await runner.cleanup()
            return out

        async def render_and_latency(owned: list[str], fake_port: int, out: dict[str, Any], running: list[Any]) -> None:
            a_port, b_port = free_port(), free_port()
            a = await asyncio.to_thread(run_gateway, tmp, "web-a", gateway_config(a_port, redis_url, mongo_url, fake_port), "all")
            running.append(a)
            b = await asyncio.to_thread(run_gateway, tmp, "web-b", gateway_config(b_port, redis_url, mongo_url, fake_port), "web")
            running.append(b)
            base_a, base_b = f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"
            print("inbox render ...", file=sys.stderr)
            out["render"] = await inbox_render(base_b, redis_url, args.renders)
            print("live latency ...", file=sys.stderr)
            out["live"] = await live_latency([base_a, base_b], base_a, owned, 100, args.messages)
            for proc in running:
                stop(proc)
            running.clear()

        async def ack_path(fake_port: int, out: dict[str, Any], running: list[Any]) -> None:
            print("webhook ack with and without live connections ...", file=sys.stderr)
            if TWO_CORES:
                os.sched_setaffinity(0, {1})  # the stream readers stay off the gateway's core
            web_port = free_port()
            cfg = gateway_config(web_port, redis_url, mongo_url, fake_port)
            ack_web = await asyncio.to_thread(run_gateway, tmp, "ack-web", cfg, "web", 0)
            running.append(ack_web)
            names = ["warm", *(f"{kind}{i}" for i in range(args.rounds) for kind in ("without", "with"))]
            files = {name: tmp / f"ack-{name}.txt" for name in names}  # fresh MsgIds: no run hits dedup
            for i, f in enumerate(files.values()):
                make_requests(f, args.requests, 20_000_000 + i * 1_000_000)
            waiting = [f"wechat:{ACCOUNT['account']}:oSeed{i}" for i in range(200)]
            stop_events = asyncio.Event()
            publisher = asyncio.create_task(publish_events(redis_url, waiting, args.events, args.queue_events / args.events, stop_events))
            try:
                await asyncio.to_thread(run_wrk, web_port, 16, 2, files["warm"])
                out["relay"] = await relay_cpu(ack_web.pid, f"http://127.0.0.1:{web_port}", args.duration)
                # Alternating runs: on a shared machine the noise between two runs
                # can exceed the difference being measured.
                out["ack"] = []
                for i in range(args.rounds):
                    load = load_average()
                    without = await asyncio.to_thread(measured_wrk, ack_web.pid, web_port, files[f"without{i}"], args.duration)
                    streams, http = await open_inbox_streams(f"http://127.0.0.1:{web_port}", 200)
                    try:
                        events_before = streams.events
                        with_ = await asyncio.to_thread(measured_wrk, ack_web.pid, web_port, files[f"with{i}"], args.duration)
                        delivered = streams.events - events_before
                    finally:
                        await streams.close()
                        await http.close()
                    out["ack"].append((without, with_, delivered, load))
            finally:
                stop_events.set()
                await publisher

        try:
            out = asyncio.run(scenario())
        finally:
            for proc in procs:
                stop(proc)

    print()
    if "render" in out:
        report_render_and_latency(args, out)
    report_ack(args, out)
    return 0


def report_render_and_latency(args: argparse.Namespace, out: dict[str, Any]) -> None:
    times, redis_per_render, size = out["render"]
    live = out["live"]
    print(f"1. Inbox render, {args.conversations} conversations (200 waiting, 150 with the agent), {len(times)} renders, one client")
    print(f"   p50 {pct(times, 50):.1f} ms   p95 {pct(times, 95):.1f} ms   max {max(times):.1f} ms   "
          f"{redis_per_render:.1f} Redis commands per render (incl. session), page {size / 1024:.0f} KB")
    print(f"2. Customer message -> visible on the agent's page, 2 web processes, 100 open streams, {len(live)} messages")
    print(f"   p50 {pct(live, 50):.0f} ms   p95 {pct(live, 95):.0f} ms   max {max(live):.0f} ms   mean {statistics.mean(live):.0f} ms")


def report_ack(args: argparse.Namespace, out: dict[str, Any]) -> None:
    print(f"3. Webhook ack path, --role web pinned to core 0, wrk c=16 on core 1, {args.events} events/s ({args.queue_events} about the queue) in both runs")
    print(f"   {'round':>5} {'':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'errors':>7}")
    for i, (without, with_, delivered, load) in enumerate(out["ack"], start=1):
        for name, res in (("no live connections", without), (f"200 streams ({delivered} events)", with_)):
            print(f"   {i:>5} {name:28} {res['rps']:>8.0f} {res['p50']:>8.2f} {res['p99']:>8.2f} {res['cpu_us']:>11.0f} {int(res['errors']):>7}")
        print(f"   {'':>5} {load}")
    print("   gateway CPU with no requests, events as above: ms per second without / with 200 inbox streams")
    for quiet, busy, load in out["relay"]:
        print(f"   {'':>5} {quiet:>6.1f} / {busy:>6.1f} ms/s   relay {busy - quiet:+.1f} ms/s   {load}")
    rps = [w["rps"] / wo["rps"] - 1 for wo, w, _, _ in out["ack"]]
    p99 = [w["p99"] / wo["p99"] - 1 for wo, w, _, _ in out["ack"]]
    cpu = [w["cpu_us"] / wo["cpu_us"] - 1 for wo, w, _, _ in out["ack"]]
    print(f"   with streams vs without, per round: throughput {', '.join(f'{100 * r:+.1f}%' for r in rps)}; "
          f"p99 {', '.join(f'{100 * r:+.1f}%' for r in p99)}; gateway CPU per request {', '.join(f'{100 * r:+.1f}%' for r in cpu)}")


if __name__ == "__main__":
    sys.exit(main())
