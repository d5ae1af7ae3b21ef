"""Notification engine throughput: policy decisions, notify() and a weekly digest build.

    python bench/bench_notify.py [--customers 100000] [--notify 2000] [--campaign 100000]

Starts a private redis-server and the embedded MongoDB-protocol server (or uses
KEFU_TEST_REDIS_URL / KEFU_TEST_MONGO_URL), then measures:

* pure policy decisions per second (``preferences.policy.decide``);
* ``notify()`` per second end to end (preferences read, record, outbox), sent at once
  and folded into weekly digests;
* ``notify_many()`` over a campaign of ``--campaign`` notifications to as many customers
  with a mix of preferences (immediate, daily and weekly digests, quiet hours, opted
  out, major only): time, peak RSS, MongoDB commands per notification (target < 30 s,
  < 500 MB), and the same campaign again (every notification a duplicate);
* a weekly digest build for ``--customers`` customers with 3 notifications each, filed
  the way ``notify()`` files them (the notification records, the items rendered into
  their digest records, and the whole digest's text as the last filing rendered it):
  seeding is not timed; the build is (claim, read, render,
  queue in the outbox, commit one batch record per claimed batch), with the process's
  peak RSS and the MongoDB commands it sent per digest. Target: < 20 s and < 1 GB.
  Settling the batches (``settle()``, run by the workers afterwards: outcome documents
  written in ``insert_many`` batches) is timed on its own line; target < 60 s.

Every figure is printed with the load average; ``--retry-writes off`` (the default, as
the embedded server runs) puts ``retryWrites=false`` on the store connection.

The engine has a message store, as in the gateway: the outbox's sender writes each
digest's message record when it sends it, so that write is not part of the build. The
digests carry the copy of the customer record that ``notify()`` files with them; no
customer changed since, so the build reads no customer record (``--changed`` makes that
share of customers change through the store after filing, so their records are read).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import AsyncMongoClient, monitoring  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from bench.report import CommandCounter, load_average, peak_rss_mb, print_rows  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.store import MessageStore  # noqa: E402
from preferences.clock import ManualClock, utc  # noqa: E402
from preferences.engine import NotificationEngine, digest_id  # noqa: E402
from preferences.model import Importance, Notification, Topic, resolve, validate_layer  # noqa: E402
from preferences.policy import decide  # noqa: E402
from preferences.render import Renderer  # noqa: E402
from preferences.store import CHANGED_SINCE_KEY, PreferenceStore  # noqa: E402
from tests.services import mongo_server, redis_server  # noqa: E402

SH = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SH)  # a Monday
COMMANDS = CommandCounter()
monitoring.register(COMMANDS)  # before any client exists
WEEKLY = {"topics": {t.value: {"frequency": "weekly", "weekday": 0, "at": "09:00"} for t in Topic}}


# The campaign's mix, by customer number modulo 6 (as in tests/preferences/test_notify_many.py).
MIX: list[dict[str, Any]] = [
    {"quiet_hours": None},
    {"topics": {"marketing": {"frequency": "daily", "at": "18:00"}}},
    {"topics": {"marketing": {"frequency": "weekly", "weekday": 4, "at": "09:00"}}},
    {"quiet_hours": {"start": "09:00", "end": "12:00"}},
    {"topics": {"marketing": {"opted_out": True}}},
    {"topics": {"marketing": {"frequency": "major_only"}}},
]


async def bench_campaign(engine: NotificationEngine, db: Any, counter: CommandCounter, n: int) -> list[tuple[str, str]]:
    chunk = 5000
    for start in range(0, n, chunk):
        await db["pref_customers"].insert_many([
            {"_id": f"m{i}", "profile": {}, "segments": [], "consents_active": ["marketing"], "version": 1,
             "settings": {"addresses": {"wechat": {"account": "a", "openid": f"om{i}"}}, "channels": ["wechat"], **MIX[i % len(MIX)]}}
            for i in range(start, min(n, start + chunk))
        ])
    campaign = [Notification(f"m{i}", Topic.MARKETING, Importance.NORMAL, {"title": "春季保养 8 折", "code": f"SPRING{i % 97}"}, key="spring-2026")
                for i in range(n)]
    rows: list[tuple[str, str]] = []
    for label in ("notify_many() campaign", "  the same campaign again (all duplicates)"):
        rss0, commands0 = peak_rss_mb(), counter.count
        t0, cpu0 = time.perf_counter(), time.process_time()
        decided: dict[str, int] = {}
        for start in range(0, n, chunk):
            for d in await engine.notify_many(campaign[start : start + chunk]):
                kind = type(d).__name__ if isinstance(d, Exception) else d.action.value
                decided[kind] = decided.get(kind, 0) + 1
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        commands = counter.count - commands0
        mix = ", ".join(f"{k} {v:,}" for k, v in sorted(decided.items()))
        rows.append((f"{label}, {n:,} mixed ({mix})",
                     f"{took:.1f} s  {'OK' if took < 30 else 'OVER'} (< 30 s); CPU here {cpu:.1f} s; "
                     f"{commands:,} commands, {commands / n:.3f} per notification"))
        rows.append(("  peak RSS (process, before -> after)", f"{rss0:.0f} -> {peak_rss_mb():.0f} MB  {'OK' if peak_rss_mb() < 500 else 'OVER'} (< 500 MB)"))
    return rows


def bench_policy(n: int) -> float:
    prefs = resolve("c", [validate_layer({"addresses": {"wechat": {"account": "a", "openid": "o"}}, **WEEKLY})])
    imps = list(Importance)
    now = START.astimezone(dt.timezone.utc)
    t0 = time.perf_counter()
    for i in range(n):
        decide(prefs, Topic.REPAIR, imps[i % 4], now + dt.timedelta(minutes=i % 1440))
    return n / (time.perf_counter() - t0)


async def run(args: argparse.Namespace, redis_url: str, mongo_url: str) -> list[tuple[str, str]]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    # As Kefu connects to its embedded server: retryable writes off (see bot/embedded.py).
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, retryWrites=False)  # counted by COMMANDS
    db = mongo.get_default_database()
    clock = ManualClock(START)
    renderer = await asyncio.to_thread(Renderer)
    prefs = PreferenceStore(db, clock, redis=redis)
    outbox = Outbox(redis, "bench:outbox")
    store = MessageStore(db)
    await store.ensure_indexes()
    engine = NotificationEngine(db, redis, outbox, prefs, renderer, clock=clock, message_store=store)
    await prefs.ensure_indexes()
    await engine.ensure_indexes()
    rows: list[tuple[str, str]] = [("policy decide()", f"{bench_policy(200_000):,.0f} /s")]

    # notify() end to end, immediate sends, concurrently like skills would call it.
    for i in range(200):
        await prefs.create(f"n{i}", settings={"addresses": {"wechat": {"account": "a", "openid": f"o{i}"}}, "quiet_hours": None})
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await engine.notify(f"n{i % 200}", "repair", "normal", {"ticket_id": f"T{i}", "status": "处理中"})

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.notify)))
    rows.append((f"notify() end to end ({args.notify})", f"{args.notify / (time.perf_counter() - t0):,.0f} /s"))

    # notify() folding into weekly digests: each filing also renders its digest's text.
    for i in range(200):
        await prefs.create(f"f{i}", settings={"addresses": {"email": {"address": f"f{i}@example.cn"}}, **WEEKLY})

    async def fold(i: int) -> None:
        async with sem:
            await engine.notify(f"f{i % 200}", "renewal", "normal", {"contract_id": f"K{i}", "expires": "2026-04-01"})

    t0 = time.perf_counter()
    await asyncio.gather(*(fold(i) for i in range(args.notify)))
    rows.append((f"notify() into a weekly digest ({args.notify}, {args.notify // 200} items a digest)",
                 f"{args.notify / (time.perf_counter() - t0):,.0f} /s"))
    if args.campaign:
        rows += await bench_campaign(engine, db, COMMANDS, args.campaign)
    if not args.customers:
        await redis.flushdb()
        await mongo.drop_database(db.name)
        await redis.aclose()
        await mongo.close()
        return rows
    # Out of the way of the build below (they fall due at the same time).
    folded = [str(d["_id"]) async for d in db["pref_digests"].find({}, projection={"_id": 1})]
    await engine.schedule.remove([f"d|{d}" for d in folded])
    await db["pref_digests"].delete_many({})

    rows += await bench_digests(args, db, redis, engine, prefs, clock)
    await redis.flushdb()
    await mongo.drop_database(db.name)
    await redis.aclose()
    await mongo.close()
    return rows


async def bench_digests(
    args: argparse.Namespace, db: Any, redis: Redis, engine: NotificationEngine, prefs: PreferenceStore, clock: ManualClock
) -> list[tuple[str, str]]:
    """The weekly digest build for ``--customers`` customers, then the settle."""
    rows: list[tuple[str, str]] = []
    # Weekly digest: seed customers, notifications and digests the way notify() files them.
    # The filings happen over the week before the build; this Redis was empty before the
    # run, so the store's change notes are truly complete from a week back.
    await redis.set(CHANGED_SINCE_KEY, time.time() - 7 * 86_400)
    filed_at = time.time() - 86_400
    n = args.customers
    due = (START + dt.timedelta(days=7)).replace(hour=9).timestamp()
    t0 = time.perf_counter()
    chunk = 5000
    for start in range(0, n, chunk):
        ids = range(start, min(n, start + chunk))
        customers = [
            {"_id": f"w{i}", "profile": {}, "segments": [], "consents_active": [], "version": 1,
             "settings": {"addresses": {"email": {"account": "", "address": f"w{i}@example.cn"}}, **WEEKLY}}
            for i in ids
        ]
        await db["pref_customers"].insert_many(customers)
        notes = []
        digests = []
        for i in ids:
            did = digest_id(f"w{i}", due)
            items: dict[str, Any] = {}
            for k, topic in enumerate(("repair", "renewal", "review")):
                note: dict[str, Any] = {"_id": f"w{i}-{k}", "customer": f"w{i}", "topic": topic, "importance": "normal",
                        "data": {"ticket_id": f"T{i}", "status": "处理中", "contract_id": f"K{i}", "title": "回访"},
                        "template": topic, "created_at": START.timestamp() + k, "detail": "standard", "language": "zh",
                        "period": "weekly", "status": "digest", "digest_id": did, "deliver_at": due,
                        "channels": ["email"]}
                notes.append(note)
                # As NotificationEngine._file stores it: rendered for the customer's channel.
                items[note["_id"]] = {f: note[f] for f in ("topic", "template", "language", "detail", "data", "created_at", "period")}
                items[note["_id"]]["text"] = {"email": engine.render_notification(note, "email")}
            cust = customers[i - start]
            # As the last of the three filings leaves it: revision 3, the whole digest rendered.
            rendered = engine.prerendered(3, "zh", "email", items)
            digests.append({"_id": did, "customer": f"w{i}", "due_at": due, "status": "scheduled", "created_at": 0.0, "items": items,
                            "rev": 3, "rendered": rendered,
                            "who": {f: cust[f] for f in ("settings", "segments", "consents_active")}, "who_at": filed_at})
        await db["notifications"].insert_many(notes)
        await db["pref_digests"].insert_many(digests)
        await engine.schedule.add_many({f"d|{digest_id(f'w{i}', due)}": due for i in ids})
    # Some customers change a setting during the week: their records are read at build time.
    step = max(1, round(1 / args.changed)) if args.changed > 0 else 0
    changed = 0
    for i in range(0, n, step) if step else ():
        await prefs.change(f"w{i}", {"language": "zh"}, actor=f"w{i}", via="chat")
        changed += 1
    seed_s = time.perf_counter() - t0
    clock.set(utc(due + 60))
    rss0 = peak_rss_mb()
    queued0 = await redis.xlen("bench:outbox")
    commands0 = COMMANDS.count
    t0, cpu0 = time.perf_counter(), time.process_time()
    built = await engine.run_all_due(limit=args.batch, settle=False)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    build_commands = COMMANDS.count - commands0
    queued = await redis.xlen("bench:outbox") - queued0
    batches = await db["pref_digest_batches"].count_documents({})
    rss_build = peak_rss_mb()
    rows += [
        (f"weekly digest seed ({n:,} customers, {3 * n:,} items, {changed:,} changed since)", f"{seed_s:.1f} s (not part of the target)"),
        (f"weekly digest build ({built:,} digests, {queued:,} queued, {batches} batch records)",
         f"{build_s:.1f} s  {'OK' if build_s < 20 else 'OVER'} (< 20 s)  {load_average()}"),
        ("  MongoDB commands (whole process)", f"{build_commands:,}, {build_commands / max(1, built):.3f} per digest"),
        ("  of which CPU in this process (the rest: waiting for the stores)", f"{build_cpu:.1f} s ({build_cpu / max(1, built) * 1e6:.0f} µs per digest)"),
        ("peak RSS (process)", f"{rss_build:.0f} MB (before build {rss0:.0f} MB)  {'OK' if rss_build < 1024 else 'OVER'} (< 1 GB)"),
    ]
    if args.settle:
        commands0 = COMMANDS.count
        t0 = time.perf_counter()
        await engine.settle()
        settle_s = time.perf_counter() - t0
        commands = COMMANDS.count - commands0
        # Marked on the records (main's settle) or as outcome documents.
        sent = sum([await db[c].count_documents({"status": "sent"}) for c in ("pref_digests", "pref_digest_outcomes")])
        rows.append((f"settle batches ({sent:,} digests marked sent)",
                     f"{settle_s:.1f} s  {'OK' if settle_s < 60 else 'OVER'} (< 60 s, background, after the sends)  {load_average()}"))
        rows.append(("  MongoDB commands (whole process)", f"{commands:,}, {commands / max(1, sent):.3f} per digest"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000, help="customers in the weekly digest build (0: skip it)")
    ap.add_argument("--notify", type=int, default=2000)
    ap.add_argument("--campaign", type=int, default=100_000, help="notifications in the notify_many() campaign (0: skip)")
    ap.add_argument("--batch", type=int, default=2000, help="digests claimed per run")
    ap.add_argument("--changed", type=float, default=0.01, help="share of customers who change a setting after filing")
    ap.add_argument("--no-settle", dest="settle", action="store_false",
                    help="skip timing the background settle (minutes at 100,000 on the embedded server)")
    ap.add_argument("--retry-writes", choices=("on", "off"), default="off",
                    help="the driver's retryable writes on the store connection (the embedded server runs with them off)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as r, mongo_server(Path(tmp)) as m:
        url = m.rstrip("/") + "/kefu_bench" + ("?retryWrites=false" if args.retry_writes == "off" else "")
        rows = asyncio.run(run(args, r, url))
    rows.append((f"store connection: retryWrites={args.retry_writes == 'on'}", load_average()))
    print_rows(rows)


if __name__ == "__main__":
    main()
