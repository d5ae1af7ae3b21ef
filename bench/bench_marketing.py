"""Benchmark of the marketers' workspace: customer search and the notification-activity page.

Run: ``python bench/bench_marketing.py [--customers 100000] [--notifications 1000000] [--checkpoint 250000]``
(needs redis-server and the test extra). It starts its own Redis and MongoDB-protocol
server, serves the gateway's web role in this process (its startup creates every index),
writes the customers and notification records straight into the collections in the
shape the preference store and the engine write (going through ``notify`` would take
hours and measure the engine, not the pages), and asks for the pages over HTTP as a
signed-in marketer.

Seeding, and why it does not change what is measured: with every index in place (eight
secondary indexes on ``notifications``) the embedded server stored about 1,000 records a
second here (900-1,100 us each up to 300,000 records, ``insert_many`` of 1,000 one at a
time), 15-20 minutes for a million before any page is timed. So the bench drops
the two collections' secondary indexes (``_id`` stays), writes ``--batch`` records per
``insert_many`` from ``--inserters`` concurrent writers (the next batch is built here
while the server stores one), and then builds the indexes with the owners' own
``ensure_indexes`` (the engine's and the preference store's, the calls the gateway makes
at startup) before anything is timed: before each checkpoint's pages (the indexes are
dropped again after it and the seeding goes on) and before the rollup and the pages at
the end. The timed reads therefore see the same collections and the same indexes as a
gateway whose records arrived one by one; only the seeding is faster (about 150 us per
record; each index build is printed and reported). ``--indexes-in-place`` seeds the old
way. The connection string carries ``retryWrites=false`` (see NOTES: the embedded server
slows down per retryable write). The builds go through the bench's own client, with a
long ``connectTimeoutMS``: the embedded server answers nothing while it builds an index
over a million records (minutes), and the gateway's client (2 s) gives up on it and
cancels what it was waiting for, the build included (the gateway logs "MongoDB
unreachable" meanwhile and recovers).

1. Customer search over ``--customers`` customers: by name prefix, phone, channel
   identity and segment; p50/p95 per kind and MongoDB commands per search.
2. The activity rollup over ``--notifications`` records (the first, full count; later
   runs recount only the last hours) and the activity page (7, 30 and 90 days, all topics
   and one topic, one channel) and its drill-down; p50/p95 and MongoDB commands per page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import monitoring  # noqa: E402

from preferences.activity import NotificationActivity  # noqa: E402

from bench.bench_ack import pct, start_stores, stop  # noqa: E402
from bench.report import load_average  # noqa: E402
from tests.services import free_port  # noqa: E402

PASSWORD = "bench password 1"
MARKETER = "mia"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
TOPICS = ("repair", "renewal", "review", "account", "marketing")
CHANNELS = ("wechat", "wecom", "email", "dingtalk")
SEGMENTS = ("vip", "smb", "gov", "bank", "retail")
DAY = 86_400.0
T = TypeVar("T")


class Rows(list[tuple[str, str]]):
    """The result rows, each also printed the moment it is measured: a long run that is
    stopped early still leaves what it measured."""

    def append(self, row: tuple[str, str]) -> None:
        super().append(row)
        print(f"  {row[0]}: {row[1]} ({load_average()})", file=sys.stderr, flush=True)

    def extend(self, rows: Any) -> None:
        for row in rows:
            self.append(row)


class Commands(monitoring.CommandListener):
    """Counts the MongoDB commands this process sends, by name."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.timing = False  # while set, the longest command is kept
        self.longest: tuple[float, str] = (0.0, "")
        self.timed = 0
        self._what: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1
        if self.timing:
            # What each command was (collection and filter fields), to name the longest.
            cmd = event.command
            what = cmd.get(event.command_name)
            where = cmd.get("filter") or cmd.get("q") or {}
            self._what[event.request_id] = f"{event.command_name} {what} {sorted(where) if isinstance(where, dict) else ''}"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._took(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._took(event)

    def _took(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        what = self._what.pop(event.request_id, event.command_name)
        if self.timing:
            self.timed += 1
            self.longest = max(self.longest, (event.duration_micros / 1000, what))

    def total(self) -> int:
        return sum(n for name, n in self.counts.items() if name not in ("hello", "isMaster", "ping", "endSessions"))


def customer(i: int, now: float) -> dict[str, Any]:
    rnd = random.Random(i)
    name = rnd.choice(SURNAMES) + rnd.choice(SURNAMES) + rnd.choice("明华强丽军敏静磊洋艳")
    return {
        "_id": f"cust-{i:06d}",
        "profile": {"name": f"{name}{i % 1000:03d}", "phone": f"13{i:09d}"},
        "settings": {"addresses": {"wechat": {"account": "demo", "openid": f"oBench{i:06d}"}}},
        "segments": [SEGMENTS[i % len(SEGMENTS)]] if i % 3 == 0 else [],
        "consents_active": [],
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def notification(i: int, now: float, customers: int, span_days: int) -> dict[str, Any]:
    rnd = random.Random(i)
    action = rnd.choices(("send", "digest", "hold", "suppress"), (60, 25, 10, 5))[0]
    channel = rnd.choices(CHANNELS, (60, 20, 15, 5))[0]
    doc: dict[str, Any] = {
        "_id": f"n{i:08d}",
        "customer": f"cust-{rnd.randrange(customers):06d}",
        "topic": rnd.choice(TOPICS),
        "importance": "normal",
        "data": {"contract_id": f"K-{i}"},
        "template": "renewal",
        "created_at": now - rnd.random() * span_days * DAY,
        "action": action,
        "reason": {"send": "immediate", "digest": "weekly", "hold": "quiet_hours", "suppress": rnd.choice(("opted_out", "no_consent"))}[action],
        "channels": [channel],
        "detail": "standard",
        "language": "zh",
        "deliver_at": None,
        "status": {"send": "sent", "digest": "digest", "hold": "held", "suppress": "suppressed"}[action],
        "tried": [],
    }
    if action == "send" and rnd.random() < 0.03:
        doc["failed"] = [channel]
        if rnd.random() < 0.3:
            doc["status"] = "undeliverable"
    return doc


class Probe:
    """Another client's small read (one customer by _id) every 50 ms while the rollup
    runs: how long the rollup's reads keep the server from answering anyone else."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.times: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await self.db["pref_customers"].find_one({"_id": "cust-000001"})
            self.times.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def watching(commands: Commands, db: Any) -> Iterator[Probe]:
    """Keep the longest MongoDB command and run a :class:`Probe` meanwhile."""
    commands.timing, commands.longest, commands.timed = True, (0.0, ""), 0
    probe = Probe(db)
    probe.task = asyncio.get_running_loop().create_task(probe.run())
    try:
        yield probe
    finally:
        commands.timing = False
        probe.task.cancel()


class Indexes:
    """The secondary indexes of the two seeded collections, dropped while records are
    written and built again (by the owners' own ``ensure_indexes``) before any timing."""

    def __init__(self, db: Any, ensure: Callable[[], Awaitable[None]], *collections: str) -> None:
        self.db, self.ensure, self.collections = db, ensure, collections
        self.built: list[tuple[int, float]] = []  # (records, seconds) per build

    async def drop(self) -> None:
        for name in self.collections:
            await self.db[name].drop_indexes()  # all but _id

    async def build(self, records: int) -> None:
        t0 = time.perf_counter()
        await self.ensure()
        spent = time.perf_counter() - t0
        self.built.append((records, spent))
        print(f"  indexes built over {records:,} records in {spent:.1f} s, {load_average()}", file=sys.stderr, flush=True)


async def insert_all(
    collection: Any, make: Callable[[int], dict[str, Any]], start: int, end: int, batch: int, inserters: int,
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Insert records ``start..end`` with ``inserters`` concurrent ``insert_many`` of
    ``batch``: while the server stores one batch the next one is being built here."""
    next_start = start
    done = start

    async def inserter() -> None:
        nonlocal next_start, done
        while next_start < end:
            lo, hi = next_start, min(end, next_start + batch)
            next_start = hi
            await collection.insert_many([make(i) for i in range(lo, hi)], ordered=False)
            before, done = done, done + (hi - lo)
            progress(before)

    await asyncio.gather(*(inserter() for _ in range(inserters)))


async def seed(
    mongo_url: str, args: argparse.Namespace, activity: NotificationActivity, ensure: Mapping[str, Callable[[], Awaitable[None]]],
    checkpoint: Callable[[int], Awaitable[None]], commands: Commands,
) -> dict[str, Any]:
    from pymongo import AsyncMongoClient

    customers, notifications, every = args.customers, args.notifications, args.checkpoint
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, maxPoolSize=max(4, args.inserters + 2))
    db = client.get_default_database()
    now = time.time()
    took: dict[str, Any] = {}
    cust_idx = Indexes(db, ensure["customers"], "pref_customers")
    notif_idx = Indexes(db, ensure["notifications"], "notifications")
    t0 = time.perf_counter()
    if args.index_after:
        await cust_idx.drop()
    await insert_all(db["pref_customers"], lambda i: customer(i, now), 0, customers, args.batch, args.inserters)
    if args.index_after:
        await cust_idx.build(customers)
    took["customers"] = time.perf_counter() - t0
    paused = 0.0
    t0 = time.perf_counter()
    if args.index_after:
        await notif_idx.drop()

    def progress(before: int) -> None:
        done = before + args.batch
        if done // 50_000 > before // 50_000:
            spent = time.perf_counter() - t0 - paused
            # Per record as it goes: a run stopped before the end still tells its rate.
            print(f"  {done:,} notifications in {spent:.0f} s ({spent / done * 1e6:.0f} us per record), {load_average()}",
                  file=sys.stderr, flush=True)

    for start in range(0, notifications, every):
        end = min(notifications, start + every)
        await insert_all(db["notifications"], lambda i: notification(i, now, customers, span_days=args.span_days),
                         start, end, args.batch, args.inserters, progress)
        if end < notifications:
            # The pages at this size, in case the run is stopped before the end; with
            # every index in place, as the gateway has them.
            t1 = time.perf_counter()
            if args.index_after:
                await notif_idx.build(end)
            await checkpoint(end)
            if args.index_after:
                await notif_idx.drop()
            paused += time.perf_counter() - t1
    took["notifications"] = time.perf_counter() - t0 - paused
    print(f"  {notifications:,} notifications seeded in {took['notifications']:.0f} s", file=sys.stderr, flush=True)
    if args.index_after:
        await notif_idx.build(notifications)
    took["index_builds"] = cust_idx.built + notif_idx.built
    print("  rollup ...", file=sys.stderr, flush=True)
    # A checkpoint's rollup left marks: the first run counts every record again.
    await db["notification_stats"].delete_many({"kind": "mark"})
    t0 = time.perf_counter()
    with watching(commands, db) as probe:
        took["rollup_read"] = await activity.rollup()
    took["rollup_full"] = time.perf_counter() - t0
    took["rollup_longest_ms"], took["rollup_commands"] = commands.longest[0], commands.timed
    took["rollup_longest_name"] = commands.longest[1]
    took["probe_max_ms"], took["probe_n"] = max(probe.times, default=0.0), len(probe.times)
    t0 = time.perf_counter()
    took["rollup_again_read"] = await activity.rollup()
    took["rollup_again"] = time.perf_counter() - t0
    took["stats_rows"] = await db["notification_stats"].count_documents({})
    await client.close()
    return took


def through(owner: T, attr: str, client: Any) -> T:
    """A copy of ``owner`` whose collection ``attr`` is read through ``client``."""
    clone = copy.copy(owner)
    setattr(clone, attr, client.get_default_database()[getattr(owner, attr).name])
    return clone


async def timed(http: Any, urls: list[str], commands: Commands) -> tuple[list[float], float]:
    times: list[float] = []
    before = commands.total()
    for url in urls:
        t0 = time.perf_counter()
        async with http.get(url) as resp:
            body = await resp.text()
            assert resp.status == 200, (url, resp.status, body[:300])
        times.append((time.perf_counter() - t0) * 1000)
    return times, (commands.total() - before) / len(urls)


async def measure(redis_url: str, mongo_url: str, args: argparse.Namespace, commands: Commands) -> list[tuple[str, str]]:
    """Start the web role (which creates every index, as in production), write the
    records with those indexes in place, then time the pages."""
    import aiohttp
    from aiohttp import web

    from admin.roles import Role
    from admin.users import UserStore
    from bot.app import build_app
    from bot.config import settings_from_mapping
    from preferences.services import SERVICES
    from tests.console.conftest import Browserless

    cfg = {
        "redis_url": redis_url, "mongo_url": mongo_url, "nlu": {"enabled": False}, "speech": {"enabled": False},
        "console": {"signin_per_address": 10_000},
        "channels": {"wechat": [{"account": "demo", "app_id": "wx0123456789abcdef", "app_secret": "s", "token": "t"}]},
    }
    app = build_app(settings_from_mapping(cfg, env={}), role="web")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    rows = Rows()
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    await UserStore(client.get_default_database()).create(MARKETER, Role.MARKETER, PASSWORD)
    await client.close()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    # The owners' own index lists, built through the bench's client: the gateway's client
    # gives up on a busy server after 2 s (its connectTimeoutMS) and cancels whatever it
    # was waiting for, a build over a million records included.
    seeding: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    activity = app[SERVICES].activity  # the gateway's own: it reads the records through its engine

    async def pages_at(size: int) -> None:
        if not any(label.startswith("activity rollup, full, at") for label, _ in rows):
            t0 = time.perf_counter()
            read = await activity.rollup()
            spent = time.perf_counter() - t0
            rows.append((f"activity rollup, full, at {size:,} records", f"{spent:.1f} s ({spent / max(1, read) * 1e6:.0f} us per record)"))
        for label, query in (("activity page, 90 days (stats of the first checkpoint's rollup)", "activity?days=90"),
                             ("activity drill-down, 7 days, renewal, suppressed", "activity/notifications?days=7&topic=renewal&outcome=suppressed")):
            times, per = await timed(http, [f"{base}/admin/marketing/{query}"] * 5, commands)
            rows.append((f"{label}, at {size:,} records",
                         f"p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms, {per:.1f} MongoDB commands"))

    try:
        assert (await Browserless(base, http).sign_in(MARKETER, PASSWORD)).status == 303
        print(f"seeding {args.customers:,} customers and {args.notifications:,} notifications ...", file=sys.stderr)
        ensure = {"customers": through(app[SERVICES].prefs, "customers", seeding).ensure_indexes,
                  "notifications": through(app[SERVICES].engine, "notifications", seeding).ensure_indexes}
        took = await seed(mongo_url, args, activity, ensure, pages_at, commands)
        how = (f"insert_many of {args.batch:,} x {args.inserters} concurrent, "
               + ("secondary indexes built after" if args.index_after else "indexes in place"))
        rows.extend([(f"index build over {n:,} records", f"{s:.1f} s") for n, s in took["index_builds"]])
        rows.extend([
            (f"seed customers ({how})", f"{took['customers']:.1f} s"),
            (f"seed notifications ({how})",
             f"{took['notifications']:.1f} s ({took['notifications'] / max(1, args.notifications) * 1e6:.0f} us per record)"),
            ("activity rollup, first run (every record)",
             f"{took['rollup_full']:.1f} s for {int(took['rollup_read']):,} records ({took['rollup_full'] / max(1, took['rollup_read']) * 1e6:.0f} us per record)"
             f" -> {int(took['stats_rows']):,} documents"),
            ("activity rollup, first run: longest single MongoDB command",
             f"{took['rollup_longest_ms']:.0f} ms ({took['rollup_longest_name']}; {int(took['rollup_commands']):,} commands)"),
            ("activity rollup, first run: another client's find_one by _id meanwhile",
             f"max {took['probe_max_ms']:.0f} ms over {int(took['probe_n'])} reads"),
            ("activity rollup, next run (hours still changing)", f"{took['rollup_again']:.2f} s for {int(took['rollup_again_read']):,} records"),
        ])
        rnd = random.Random(7)
        n, q = args.customers, args.queries
        kinds = {
            "name prefix (2 chars)": [f"name={rnd.choice(SURNAMES)}{rnd.choice(SURNAMES)}" for _ in range(q)],
            "phone": [f"phone=13{rnd.randrange(n):09d}" for _ in range(q)],
            "channel identity": [f"identity=oBench{rnd.randrange(n):06d}" for _ in range(q)],
            "segment": [f"segment={rnd.choice(SEGMENTS)}" for _ in range(q)],
        }
        await timed(http, [base + "/admin/marketing/customers?name=王"], commands)  # warm-up
        # The web role's background job built each segment's sample while the records
        # were written (preferences.segment_samples): even a segment's first search reads
        # its sample back by _id.
        times, per = await timed(http, [f"{base}/admin/marketing/customers?segment={s}" for s in SEGMENTS], commands)
        rows.append((f"customer search, segment, first per segment ({n:,} customers)",
                     f"p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms, {per:.1f} MongoDB commands"))
        for kind, queries in kinds.items():
            times, per = await timed(http, [f"{base}/admin/marketing/customers?{x}" for x in queries], commands)
            rows.append((f"customer search, {kind} ({n:,} customers)",
                         f"p50 {statistics.median(times):.0f} ms, p95 {pct(times, 95):.0f} ms, {per:.1f} MongoDB commands"))
        pages = {
            "7 days, all topics": "days=7",
            "30 days, all topics": "days=30",
            "90 days, all topics": "days=90",
            "30 days, renewal": "days=30&topic=renewal",
            "30 days, email": "days=30&channel=email",
        }
        for label, query in pages.items():
            times, per = await timed(http, [f"{base}/admin/marketing/activity?{query}"] * args.renders, commands)
            rows.append((f"activity page, {label} ({args.notifications:,} records)",
                         f"p50 {statistics.median(times):.0f} ms, p95 {pct(times, 95):.0f} ms, {per:.1f} MongoDB commands"))
        times, per = await timed(http, [f"{base}/admin/marketing/activity/notifications?days=7&topic=renewal&outcome=suppressed"] * args.renders, commands)
        rows.append(("activity drill-down, 7 days, renewal, suppressed (200 rows)",
                     f"p50 {statistics.median(times):.0f} ms, p95 {pct(times, 95):.0f} ms, {per:.1f} MongoDB commands"))
    finally:
        await http.close()
        await seeding.close()
        await runner.cleanup()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--span-days", type=int, default=90, help="notifications spread over this many days")
    parser.add_argument("--queries", type=int, default=100, help="searches per kind")
    parser.add_argument("--renders", type=int, default=30, help="renders per activity page")
    parser.add_argument("--checkpoint", type=int, default=250_000, help="time the activity pages every so many records seeded")
    parser.add_argument("--batch", type=int, default=5_000, help="records per insert_many while seeding")
    parser.add_argument("--inserters", type=int, default=2, help="concurrent insert_many while seeding")
    parser.add_argument("--on-disk", action="store_true", help="the MongoDB-protocol server stores on disk (in the temporary directory)")
    parser.add_argument("--indexes-in-place", dest="index_after", action="store_false",
                        help="seed with every index in place (slower) instead of building the secondary indexes after")
    args = parser.parse_args()
    commands = Commands()
    monitoring.register(commands)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-marketing-") as tmp_name:
        # In memory, an index build over a million records failed ("internal server
        # error"; 500,000 built): --on-disk gives the server a store it can evict to.
        procs, redis_url, mongo_url = start_stores(Path(tmp_name), str(Path(tmp_name) / "mongo") if args.on_disk else ":memory:")
        mongo_url += "?retryWrites=false"  # see NOTES: the embedded server slows down otherwise
        # The embedded server answers nothing else while it builds an index over a million
        # records (minutes): with the default 20 s, the driver's heartbeat gives up on it
        # and cancels the build's own command.
        mongo_url += "&connectTimeoutMS=900000"
        # A connection left idle through an index build and a checkpoint was found closed
        # (broken pipe on the next insert_many, not retried with retryWrites=false).
        mongo_url += "&maxIdleTimeMS=30000"
        try:
            rows = asyncio.run(measure(redis_url, mongo_url, args, commands))
        finally:
            for proc in procs:
                stop(proc)
    print(load_average())
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
