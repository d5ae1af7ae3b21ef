"""Settling digests into outcome documents, and digests that cannot be built.

Settling writes one small outcome document per digest with ``insert_many`` instead of
rewriting each digest record; these pin what that must keep: a settled digest is never
built again (not after a lost schedule, not after a settle repeated by a crash), the
console's calendar stops counting it, and one digest that cannot be built fails alone.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from preferences.clock import ManualClock
from preferences.engine import NotificationEngine
from preferences.store import PreferenceStore
from tests.preferences.conftest import outbox_messages

DAILY = {"topics": {"repair": {"frequency": "daily", "at": "18:00"}}}


def _email(customer: str) -> dict[str, Any]:
    return {"channels": ["email"], "addresses": {"email": {"address": f"{customer}@example.cn"}}, **DAILY}


async def _file(engine: NotificationEngine, prefs: PreferenceStore, customers: list[str]) -> None:
    for c in customers:
        await prefs.create(c, settings=_email(c))
        await engine.notify(c, "repair", "normal", {"ticket_id": f"T-{c}", "status": "维修中"})


async def test_a_repeated_settle_and_a_lost_schedule_send_nothing_twice(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    await _file(engine, prefs, [f"s{i}" for i in range(5)])
    due = float((await db["pref_digests"].find_one({}) or {})["due_at"])
    clock.advance(86_400)
    assert await engine.run_all_due(settle=False) == 5
    batch = await db["pref_digest_batches"].find_one({})
    assert batch is not None
    assert await engine.settle() == 1
    # A worker settled the same batch and died before deleting it: settling it again
    # keeps the outcomes as they are.
    await db["pref_digest_batches"].insert_one(batch)
    assert await engine.settle() == 1
    assert await db["pref_digest_outcomes"].count_documents({"status": "sent", "channel": "email"}) == 5
    assert await engine.digests.due_between(due - 1, due + 1) == []
    # Redis lost its schedule and the outbox's keys: resync re-queues nothing settled,
    # and claiming the old members again builds nothing.
    for key in await redis.keys("kefu:outbox:key:*"):
        await redis.delete(key)
    await redis.delete("kefu:prefs:due", "kefu:prefs:due:lease")
    await engine.resync()
    assert await engine.schedule.pending() == 0
    members = [f"d|{d['_id']}" async for d in db["pref_digests"].find({}, {"_id": 1})]
    await engine.process(members, {m: due for m in members})
    assert len(await outbox_messages(redis)) == 5
    assert await db["pref_digest_batches"].count_documents({}) == 0


async def test_a_digest_settled_and_a_digest_still_waiting_in_the_calendar_and_resync(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    await _file(engine, prefs, ["w1"])
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    # Filed for the next day: still waiting.
    await engine.notify("w1", "repair", "normal", {"ticket_id": "T-next", "status": "x"})
    first, nxt = sorted([float(d["due_at"]) async for d in db["pref_digests"].find({}, {"due_at": 1})])
    assert await engine.digests.due_between(first - 1, nxt + 1) == [(nxt, 1)]
    await redis.delete("kefu:prefs:due", "kefu:prefs:due:lease")
    await engine.resync()
    assert await engine.schedule.pending() == 1


async def test_one_digest_that_cannot_be_built_fails_alone(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = mongo.get_default_database()
    customers = [f"p{i}" for i in range(6)]
    await _file(engine, prefs, customers)
    # p1: a stored customer record without its e-mail address (written behind the store's
    # back, and so is the digest's copy of it).
    await db["pref_customers"].update_one({"_id": "p1"}, {"$set": {"settings.addresses.email": {"account": ""}}})
    await db["pref_digests"].update_one({"customer": "p1"}, {"$set": {"who.settings.addresses.email": {"account": ""}}})
    # p4: an item whose template does not exist, and no text rendered at filing.
    p4 = await db["pref_digests"].find_one({"customer": "p4"})
    assert p4 is not None
    (nid,) = p4["items"]
    await db["pref_digests"].update_one(
        {"_id": p4["_id"]}, {"$set": {f"items.{nid}.template": "no_such_template", f"items.{nid}.text": {}}, "$unset": {"rendered": ""}}
    )
    clock.advance(86_400)
    with caplog.at_level(logging.WARNING, logger="preferences.digests"):
        assert await engine.run_all_due() == 6
    sent = {m["recipient"] for m in await outbox_messages(redis)}
    assert sent == {f"{c}@example.cn" for c in customers if c not in ("p1", "p4")}
    outcomes = {d["_id"]: d["status"] async for d in db["pref_digest_outcomes"].find({})}
    by_customer = {d["customer"]: outcomes.get(d["_id"]) async for d in db["pref_digests"].find({}, {"customer": 1})}
    assert by_customer == {c: "failed" if c in ("p1", "p4") else "sent" for c in customers}
    failures = [r for r in caplog.records if "not built" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info is None for r in failures)
    assert not any("p1" in r.getMessage() or "p4" in r.getMessage() for r in caplog.records)
    # Failed is final: running again sends nothing and retries nothing.
    assert await engine.run_all_due() == 0
    assert len(await outbox_messages(redis)) == 4
