"""The engine on real Redis and MongoDB: digests driven by a manual clock, exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from bot.outbox import Outbox
from preferences.clock import ManualClock
from preferences.engine import NotificationEngine
from preferences.policy import Action
from preferences.render import Renderer
from preferences.store import PreferenceStore
from tests.preferences.conftest import WECHAT_CUSTOMER, outbox_messages

DAILY_REPAIR = {"topics": {"repair": {"frequency": "daily", "at": "18:00", "detail": "full"}, "renewal": {"frequency": "daily", "at": "18:00"}}}


async def test_digest_waits_for_its_time_then_groups_newest_first(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock) -> None:
    await prefs.create("c1", settings={**WECHAT_CUSTOMER, **DAILY_REPAIR})
    d1 = await engine.notify("c1", "repair", "normal", {"ticket_id": "T-1", "status": "已受理"})
    clock.advance(60)
    await engine.notify("c1", "renewal", "low", {"contract_id": "K-9", "expires": "2026-04-01"})
    clock.advance(60)
    await engine.notify("c1", "repair", "normal", {"ticket_id": "T-1", "status": "维修中", "progress": 50})
    assert d1.action is Action.DIGEST
    assert await engine.run_due() == 0  # 10:02, due at 18:00
    clock.advance(7 * 3600)  # 17:02
    assert await engine.run_due() == 0
    assert await outbox_messages(redis) == []
    clock.advance(3600)  # 18:02
    assert await engine.run_due() == 1
    [msg] = await outbox_messages(redis)
    text = msg["text"]
    assert msg["recipient"] == "oCust1" and msg["idempotency_key"].startswith("pref:d:")
    assert text.index("维修中") < text.index("已受理")  # newest first within a topic
    assert text.index("维修进度") < text.index("续约提醒")  # the group with the newest item first
    assert "▓▓▓▓▓░░░░░ 50%" in text  # full detail: progress bar


async def test_weekly_digest_on_its_weekday_and_compact_on_dingtalk(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock) -> None:
    await prefs.create(
        "c2",
        settings={
            "channels": ["dingtalk"],
            "addresses": {"dingtalk": {"account": "corp", "staff_id": "manager01"}},
            "topics": {"review": {"frequency": "weekly", "weekday": 4, "at": "10:00"}},
        },
    )
    await engine.notify("c2", "review", "normal", {"title": "差评跟进", "text": "已联系门店"})
    await engine.notify("c2", "review", "normal", {"title": "好评回访"})
    clock.advance(4 * 86_400 - 60)  # Friday 09:59
    assert await engine.run_due() == 0
    clock.advance(120)  # Friday 10:01 (the clock starts on a Monday)
    assert await engine.run_due() == 1
    [msg] = await outbox_messages(redis)
    assert msg["channel"] == "dingtalk" and msg["recipient"] == "manager01"
    assert msg["text"].startswith("每周汇总 2 条")
    assert "已联系门店" not in msg["text"]  # compact: headlines only


async def test_quiet_hours_hold_then_release(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock) -> None:
    await prefs.create("c3", settings=WECHAT_CUSTOMER)
    clock.advance(13 * 3600)  # 23:00
    held = await engine.notify("c3", "renewal", "high", {"contract_id": "K-1"})
    critical = await engine.notify("c3", "account", "critical", {"title": "异地登录"})
    assert held.action is Action.HOLD and critical.action is Action.SEND
    assert [m["topic"] for m in await outbox_messages(redis)] == ["account"]
    clock.advance(9 * 3600 - 60)  # 07:59
    assert await engine.run_due() == 0
    clock.advance(120)
    assert await engine.run_due() == 1
    assert [m["topic"] for m in await outbox_messages(redis)] == ["account", "renewal"]


async def test_notify_is_idempotent(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis) -> None:
    await prefs.create("c4", settings=WECHAT_CUSTOMER)
    first = await engine.notify("c4", "repair", "normal", {"status": "x"}, key="T-9:3")
    again = await engine.notify("c4", "repair", "normal", {"status": "x"}, key="T-9:3")
    assert again.duplicate and again.notification_id == first.notification_id
    assert len(await outbox_messages(redis)) == 1


async def test_empty_digest_is_not_sent(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]) -> None:
    await prefs.create("c5", settings={**WECHAT_CUSTOMER, **DAILY_REPAIR})
    await engine.notify("c5", "repair", "normal", {"status": "x"})
    db = mongo.get_default_database()
    # Withdrawn: the item leaves the digest record (where the build reads it) and its record.
    await db["notifications"].delete_many({"customer": "c5"})
    await db["pref_digests"].update_one({"customer": "c5"}, {"$set": {"items": {}}})
    clock.advance(86_400)
    assert await engine.run_due() == 1
    assert await outbox_messages(redis) == []
    # The outcome is committed as a batch record and written as an outcome by settle().
    assert await engine.settle() == 1
    digest = await db["pref_digests"].find_one({"customer": "c5"})
    assert digest is not None and ((await engine.digests.outcome_of(digest)) or {}).get("status") == "empty"
    assert await db["pref_digest_batches"].count_documents({}) == 0


async def test_digests_exactly_once_with_two_workers_and_a_restart(
    mongo: AsyncMongoClient[Any], redis: Redis, outbox: Outbox, prefs: PreferenceStore, renderer: Renderer, clock: ManualClock
) -> None:
    db = mongo.get_default_database()

    def worker() -> NotificationEngine:
        return NotificationEngine(db, redis, outbox, PreferenceStore(db, clock), renderer, clock=clock, lease_s=60)

    a, b = worker(), worker()
    await a.ensure_indexes()
    customers = [f"x{i}" for i in range(40)]
    for cid in customers:
        await prefs.create(cid, settings={"channels": ["email"], "addresses": {"email": {"address": f"{cid}@example.cn"}}, **DAILY_REPAIR})
        await a.notify(cid, "repair", "normal", {"status": "one"})
        await b.notify(cid, "renewal", "low", {"contract_id": "K"})
    clock.advance(86_400)
    # A third worker claims a batch and dies before acknowledging it.
    crashed = worker()
    claimed = await crashed.schedule.claim(clock.now(), limit=10)
    await crashed.process(claimed[:5])  # sent some, acknowledged none
    # Two workers run concurrently; they must not touch the crashed worker's leases yet.
    await asyncio.gather(a.run_all_due(limit=7), b.run_all_due(limit=7))
    assert len(await outbox_messages(redis)) == 30 + 5
    # Restart: a fresh worker after the lease ran out takes the rest over.
    clock.advance(61)
    restarted = worker()
    await restarted.resync()
    assert await restarted.run_all_due() == 10
    messages = await outbox_messages(redis)
    assert len(messages) == 40
    assert sorted(m["recipient"] for m in messages) == sorted(f"{c}@example.cn" for c in customers)
    assert await restarted.run_all_due() == 0 and await restarted.schedule.pending() == 0


async def test_history_and_rollback(prefs: PreferenceStore) -> None:
    await prefs.create("c6", settings=WECHAT_CUSTOMER, actor="crm", via="api")
    await prefs.change("c6", {"channels": ["email"]}, actor="c6", via="chat")
    await prefs.change("c6", {"topics": {"repair": {"detail": "brief"}}}, actor="agent7", via="console")
    history = await prefs.list_history("c6")
    assert [(h["version"], h["actor"], h["via"]) for h in history] == [(3, "agent7", "console"), (2, "c6", "chat"), (1, "crm", "api")]
    assert history[1]["old"]["channels"] == ["wechat", "email"] and history[1]["new"]["channels"] == ["email"]
    assert await prefs.rollback("c6", 1, actor="agent7", via="console") == 4
    eff = await prefs.effective("c6")
    assert list(eff.channels) == ["wechat", "email"]


async def test_customer_choice_overrides_segment_and_default(prefs: PreferenceStore) -> None:
    await prefs.put_layer("default", {"topics": {"marketing": {"frequency": "weekly"}}}, actor="mkt")
    await prefs.put_layer("segment:vip", {"topics": {"marketing": {"frequency": "daily"}, "repair": {"detail": "full"}}}, actor="mkt")
    await prefs.create("c7", settings={"topics": {"repair": {"detail": "brief"}}}, segments=["vip"])
    eff = await prefs.effective("c7")
    from preferences.model import Topic

    assert eff.topics[Topic.MARKETING].frequency.value == "daily"  # segment over default
    assert eff.topics[Topic.REPAIR].detail.value == "brief"  # own choice over segment
