"""``notify_many`` on real Redis and the real MongoDB-protocol server: a campaign with a
mix of preferences lands exactly the right outbox entries, digest items and held
messages, a second run adds nothing, and a poison item fails alone."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from preferences.engine import Decision, NotificationEngine, notification_id
from preferences.errors import UnknownCustomer
from preferences.model import Importance, Notification, Topic
from preferences.policy import Action
from preferences.schedule import DUE_KEY
from preferences.store import PreferenceStore
from tests.preferences.conftest import OUTBOX_STREAM, outbox_messages

CAMPAIGN = 2400  # big enough for several batches and $in chunks; 100,000 runs in bench/bench_notify.py

# The mix, by customer number modulo 6, and what a normal renewal notice does to each.
KINDS: list[tuple[str, dict[str, Any], Action, str]] = [
    ("immediate", {"quiet_hours": None}, Action.SEND, "immediate"),
    ("daily", {"topics": {"renewal": {"frequency": "daily", "at": "18:00"}}}, Action.DIGEST, "daily"),
    ("weekly", {"topics": {"renewal": {"frequency": "weekly", "weekday": 4, "at": "09:00"}}}, Action.DIGEST, "weekly"),
    ("quiet", {"quiet_hours": {"start": "09:00", "end": "12:00"}}, Action.HOLD, "quiet_hours"),
    ("opted_out", {"topics": {"renewal": {"opted_out": True}}}, Action.SUPPRESS, "opted_out"),
    ("major_only", {"topics": {"renewal": {"frequency": "major_only"}}}, Action.SUPPRESS, "below_major"),
]


def _customer(i: int) -> dict[str, Any]:
    _name, layer, _action, _reason = KINDS[i % len(KINDS)]
    settings = {"addresses": {"wechat": {"account": "demo", "openid": f"oCamp{i}"}}, "channels": ["wechat"], **layer}
    return {"_id": f"camp{i}", "profile": {}, "settings": settings, "segments": [], "consents_active": [], "version": 1}


def _campaign(n: int) -> list[Notification]:
    return [Notification(f"camp{i}", Topic.RENEWAL, Importance.NORMAL, {"contract_id": f"K-{i}", "expires": "2026-04-01"}, key=f"camp:{i}")
            for i in range(n)]


async def _state(redis: Redis, mongo: AsyncMongoClient[Any]) -> tuple[Any, ...]:
    db = mongo.get_default_database()
    digests = {d["_id"]: (d["rev"], sorted(d["items"])) async for d in db["pref_digests"].find({})}
    due = sorted(m.decode() for m in await redis.zrange(DUE_KEY, 0, -1))
    return await redis.xlen(OUTBOX_STREAM), await db["notifications"].count_documents({}), digests, due


async def test_a_campaign_lands_exactly_the_right_sends_digests_and_holds_and_a_rerun_adds_nothing(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, mongo: AsyncMongoClient[Any]
) -> None:
    await prefs.customers.insert_many([_customer(i) for i in range(CAMPAIGN)])
    # A major-only customer still gets what matters at once.
    urgent = Notification("camp5", Topic.RENEWAL, Importance.HIGH, {"contract_id": "K-urgent"}, key="camp:urgent")
    batch = [*_campaign(CAMPAIGN), urgent]

    decisions = await engine.notify_many(batch)

    assert all(isinstance(d, Decision) and not d.duplicate for d in decisions)
    by_kind: dict[str, set[str]] = {k[0]: set() for k in KINDS}
    for i, d in enumerate(decisions[:CAMPAIGN]):
        name, _layer, action, reason = KINDS[i % len(KINDS)]
        assert isinstance(d, Decision) and (d.action, d.reason) == (action, reason), (i, d)
        by_kind[name].add(d.notification_id)
    last = decisions[-1]
    assert isinstance(last, Decision) and last.action is Action.SEND and last.reason == "urgent"

    # Outbox: one message per immediate customer and the urgent one, nothing else.
    sent = {m["idempotency_key"] for m in await outbox_messages(redis)}
    assert sent == {f"pref:n:{nid}:wechat" for nid in by_kind["immediate"] | {last.notification_id}}
    # Digests: one per digest customer, holding exactly that customer's notice.
    db = mongo.get_default_database()
    digests = [d async for d in db["pref_digests"].find({})]
    assert len(digests) == len(by_kind["daily"]) + len(by_kind["weekly"])
    assert {nid for d in digests for nid in d["items"]} == by_kind["daily"] | by_kind["weekly"]
    assert all(len(d["items"]) == 1 and d["status"] == "scheduled" for d in digests)
    # The due-list: the digests and the held messages; nothing for the suppressed.
    due = {m.decode() for m in await redis.zrange(DUE_KEY, 0, -1)}
    assert due == {f"d|{d['_id']}" for d in digests} | {f"h|{nid}" for nid in by_kind["quiet"]}
    records = {d["_id"]: d["status"] async for d in db["notifications"].find({}, projection={"status": 1})}
    assert len(records) == CAMPAIGN + 1
    assert {nid for nid, s in records.items() if s == "suppressed"} == by_kind["opted_out"] | by_kind["major_only"]
    assert {nid for nid, s in records.items() if s == "enqueued"} == by_kind["immediate"] | {last.notification_id}

    before = await _state(redis, mongo)
    again = await engine.notify_many(batch)
    assert all(isinstance(d, Decision) and d.duplicate for d in again)
    assert [(d.notification_id, d.action) for d in again if isinstance(d, Decision)] == [
        (d.notification_id, d.action) for d in decisions if isinstance(d, Decision)
    ]
    assert await _state(redis, mongo) == before


async def test_a_poison_item_fails_alone(engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, mongo: AsyncMongoClient[Any]) -> None:
    await prefs.customers.insert_many([_customer(i) for i in range(12)])
    good = _campaign(12)
    lone_surrogate = {"contract_id": "K-\ud800", "expires": "2026-04-01"}
    batch = [
        *good[:4],
        Notification("camp0", Topic.RENEWAL, Importance.NORMAL, lone_surrogate, key="poison:keyed"),  # the store cannot hold it
        Notification("camp1", Topic.RENEWAL, Importance.NORMAL, lone_surrogate),  # cannot even be keyed
        Notification("nobody", Topic.RENEWAL, Importance.NORMAL, {"contract_id": "K-0"}, key="poison:unknown"),
        *good[4:],
    ]

    results = await engine.notify_many(batch)

    assert isinstance(results[6], UnknownCustomer)
    assert isinstance(results[4], Exception) and isinstance(results[5], Exception)
    fine = [r for k, r in enumerate(results) if k not in (4, 5, 6)]
    assert all(isinstance(r, Decision) and not r.duplicate for r in fine)
    db = mongo.get_default_database()
    assert await db["notifications"].count_documents({}) == 12
    poisoned = notification_id("camp0", "renewal", "poison:keyed", "normal", lone_surrogate)
    assert await db["notifications"].find_one({"_id": poisoned}) is None
    immediate = {f"pref:n:{r.notification_id}:wechat" for r in fine if isinstance(r, Decision) and r.action is Action.SEND}
    assert len(immediate) == 2 and {m["idempotency_key"] for m in await outbox_messages(redis)} == immediate
    # The single-notification door raises the item's own error.
    try:
        await engine.submit(batch[6])
    except UnknownCustomer:
        pass
    else:
        raise AssertionError("submit() of an unknown customer must raise")
