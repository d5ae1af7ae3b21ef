"""The activity recount reads the notifications a bounded window at a time and goes on
where it stopped: at the end its figures are those of a count of every record, each
notification counted once whatever the engine did while the recount was under way."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from bot.outbox import Outbox
from preferences.activity import ActivityFilter, NotificationActivity
from preferences.activity_counts import Changes
from preferences.clock import SystemClock
from preferences.engine import NotificationEngine
from preferences.render import Renderer
from preferences.store import PreferenceStore

HOUR = 3600.0
DAY = 86_400.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTIONS = {"send": ("sent", "sent"), "digest": ("digest", "digest"), "hold": ("held", "held"), "suppress": ("suppressed", "suppressed")}


class Reads(monitoring.CommandListener):
    """The ``find`` commands sent on the notifications, with their filters."""

    def __init__(self) -> None:
        self.finds: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "notifications":
            self.finds.append({"filter": dict(event.command.get("filter") or {}), "limit": event.command.get("limit")})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def windows(self) -> list[tuple[float, float | None]]:
        """The created_at ranges of the recount's reads (not the one-record look-ups)."""
        out = []
        for f in self.finds:
            if f["limit"] == 1:
                continue
            created = f["filter"]["created_at"]
            out.append((float(created["$gte"]), float(created["$lt"]) if "$lt" in created else None))
        return out


def record(i: int, now: float, rnd: random.Random) -> dict[str, Any]:
    action = rnd.choice(list(ACTIONS))
    doc: dict[str, Any] = {
        "_id": f"n{i:05d}", "customer": f"c{i % 50}", "topic": rnd.choice(("repair", "renewal")), "created_at": now - rnd.random() * 20 * DAY,
        "action": action, "reason": "opted_out" if action == "suppress" else "", "channels": ["wechat"], "status": ACTIONS[action][1],
    }
    return doc


def expected(docs: list[dict[str, Any]]) -> tuple[Counter[str], Counter[tuple[float, str]]]:
    """Totals per outcome and per (calendar day in Shanghai, outcome), counted here."""
    totals: Counter[str] = Counter()
    days: Counter[tuple[float, str]] = Counter()
    for d in docs:
        outcome = "fell_back" if d.get("failed") else ACTIONS[d["action"]][0]
        local = dt.datetime.fromtimestamp(d["created_at"], SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        totals[outcome] += 1
        days[(local.timestamp(), outcome)] += 1
    return totals, days


async def figures(activity: NotificationActivity, now: float) -> tuple[Counter[str], Counter[tuple[float, str]]]:
    summary = await activity.summary(ActivityFilter(now - 30 * DAY, now + HOUR))
    totals = Counter({o: n for o, n in summary["totals"].items() if n})
    days = Counter({(float(s["at"]), o): s[o] for s in summary["series"] for o in summary["totals"] if s[o]})
    return totals, days


async def test_a_recount_over_many_days_reads_a_window_per_query_and_resumes_exactly(
    mongo_url: str, redis: Redis, renderer: Renderer,
) -> None:
    reads = Reads()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[reads])
    try:
        db = client.get_default_database()
        engine = NotificationEngine(db, redis, Outbox(redis, "kefu:test:outbox"), PreferenceStore(db, SystemClock()), renderer)
        await engine.ensure_indexes()
        activity = NotificationActivity(db, engine, window_s=6 * HOUR)
        await activity.ensure_indexes()
        now = time.time()
        rnd = random.Random(18)
        docs = [record(i, now, rnd) for i in range(3000)]
        await db["notifications"].insert_many(docs)

        assert await activity.rollup() == 3000
        windows = reads.windows()
        assert len(windows) >= 20 * 4  # twenty days, six hours per query
        *bounded, (last_since, last_until) = windows
        assert all(until is not None and until - since <= 6 * HOUR for since, until in bounded)
        assert last_until is None and last_since >= now - 6 * HOUR  # only the last one runs to now
        # Back to back, down to the oldest record: nothing read twice, nothing left out.
        ordered = sorted(windows, key=lambda w: w[0])
        assert ordered[0][0] <= min(d["created_at"] for d in docs)
        assert all(a[1] == b[0] for a, b in zip(ordered, ordered[1:]))
        assert await figures(activity, now) == expected(docs)

        # Counted again from scratch, one window per call (as if stopped after each one),
        # while the engine goes on: a new record, and a fallback on one from last week.
        await db["notification_stats"].delete_many({"kind": "mark"})
        reads.finds.clear()
        assert await activity.rollup(budget_s=0) > 0 and await activity.recounting()
        assert await figures(activity, now) == expected(docs)  # the stored figures stay until the end
        new = {**record(9999, now, rnd), "_id": "n-new", "created_at": time.time(), "action": "send", "status": "sent"}
        await db["notifications"].insert_one(new)
        changes = Changes()
        changes.recorded(new)
        # One in a window still to read, and one in the window already read (the walk back
        # starts below the last two hours).
        moved: dict[str, dict[str, Any]] = {}
        for old in (min(docs, key=lambda d: abs(d["created_at"] - (now - 7 * DAY))), min(docs, key=lambda d: abs(d["created_at"] - (now - 5 * HOUR)))):
            after = {**old, "action": "send", "status": "sent", "failed": ["wechat"]}
            await db["notifications"].replace_one({"_id": old["_id"]}, after)
            changes.moved(old, after)
            moved[old["_id"]] = after
        await engine.counts.add(changes)
        docs = [moved.get(d["_id"], d) for d in docs] + [new]
        assert await figures(activity, now) == expected(docs)  # the live counts, at once
        calls = 1
        while await activity.recounting():
            await activity.rollup(budget_s=0)
            calls += 1
            assert await figures(activity, now) == expected(docs)
        assert calls >= 20 * 4
        ranges = reads.windows()
        assert len(ranges) == len(set(ranges))  # resumed where it stopped, no window read twice
        assert await figures(activity, now) == expected(docs)  # each notification once
        await activity.rollup()
        assert await figures(activity, now) == expected(docs)
    finally:
        await client.close()
