"""Digest builds commit one batch record per claimed batch; settle() applies it later.

These pin the guarantees that replaced the per-digest status writes: a built batch is
never built again (even with the outbox's idempotency keys gone), settle() only touches
what the batch read, resync() does not re-queue built digests, items are rendered at
filing time but follow the customer's channel at build time, and the outbox sender
writes the message record of a digest when it sends it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from bot.messages import OutboundMessage
from bot.store import MessageStore
from preferences.clock import ManualClock
from preferences.engine import NotificationEngine
from preferences.render import Renderer
from preferences.store import CHANGE_MARGIN_S, CHANGED_KEY, CHANGED_SINCE_KEY, PreferenceStore
from tests.preferences.conftest import WECHAT_CUSTOMER, outbox_messages

DAILY = {"topics": {"repair": {"frequency": "daily", "at": "18:00"}, "renewal": {"frequency": "daily", "at": "18:00"}}}
EMAIL = {"channels": ["email"], "addresses": {"email": {"address": "x@example.cn"}}}


async def _due_members(engine: NotificationEngine) -> list[tuple[str, float]]:
    return await engine.schedule.claim_scored(engine.clock.now(), 100)


async def test_a_built_batch_is_not_built_again_before_it_is_settled(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    for i in range(3):
        await prefs.create(f"b{i}", settings={**WECHAT_CUSTOMER, "addresses": {"wechat": {"account": "demo", "openid": f"o{i}"}}, **DAILY})
        await engine.notify(f"b{i}", "repair", "normal", {"ticket_id": f"T-{i}", "status": "维修中"})
    clock.advance(86_400)
    claimed = await _due_members(engine)
    await engine.process([m for m, _ in claimed], dict(claimed))
    assert len(await outbox_messages(redis)) == 3
    assert await db["pref_digest_batches"].count_documents({}) == 1
    assert await db["pref_digests"].count_documents({"status": "scheduled"}) == 3  # not settled yet
    # The worker died before acknowledging; the outbox's keys are gone too (a lost Redis
    # keyspace, say). Another worker processes the same members: the batch record alone
    # keeps them from being built and queued again.
    for key in await redis.keys("kefu:outbox:key:*"):
        await redis.delete(key)
    await engine.process([m for m, _ in claimed], dict(claimed))
    assert len(await outbox_messages(redis)) == 3
    assert await engine.settle() == 1
    assert await db["pref_digest_outcomes"].count_documents({"status": "sent", "channel": "wechat"}) == 3
    assert await db["pref_digest_batches"].count_documents({}) == 0
    assert await engine.settle() == 0


async def test_settle_leaves_a_digest_created_after_the_batch_was_read(
    engine: NotificationEngine, prefs: PreferenceStore, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    for i in range(2):
        await prefs.create(f"r{i}", settings={**EMAIL, "addresses": {"email": {"address": f"r{i}@example.cn"}}, **DAILY})
        await engine.notify(f"r{i}", "repair", "normal", {"ticket_id": f"T-{i}", "status": "x"})
    clock.advance(86_400)
    claimed = await _due_members(engine)
    await engine.process([m for m, _ in claimed], dict(claimed))
    batch = await db["pref_digest_batches"].find_one({})
    assert batch is not None and len(batch["runs"]) == 1
    lo, hi = batch["runs"][0]["lo"], batch["runs"][0]["hi"]
    assert lo < hi
    # A digest with an id inside the run, created after the batch read its range.
    late = lo[:-1] + chr(ord(lo[-1]) + 1) if lo[:-1] + chr(ord(lo[-1]) + 1) < hi else lo + "0"
    await db["pref_digests"].insert_one(
        {"_id": late, "customer": "r0", "due_at": batch["due_at"], "status": "scheduled", "created_at": batch["read_at"] + 1, "items": {}}
    )
    await engine.settle()
    assert (await db["pref_digests"].find_one({"_id": late}) or {})["status"] == "scheduled"
    assert await db["pref_digest_outcomes"].find_one({"_id": late}) is None
    assert await db["pref_digest_outcomes"].count_documents({"status": "sent"}) == 2


async def test_resync_settles_first_and_requeues_only_what_waits(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock
) -> None:
    await prefs.create("s1", settings={**EMAIL, **DAILY})
    await engine.notify("s1", "repair", "normal", {"ticket_id": "T-1", "status": "x"})
    clock.advance(86_400)
    assert await engine.run_all_due(settle=False) == 1
    await redis.delete("kefu:prefs:due", "kefu:prefs:due:lease")  # Redis lost its schedule
    await engine.resync()
    assert await engine.schedule.pending() == 0
    assert len(await outbox_messages(redis)) == 1


async def test_items_are_rendered_when_filed_but_follow_the_channel_at_build_time(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    await prefs.create("m1", settings={**WECHAT_CUSTOMER, **DAILY, "addresses": {**WECHAT_CUSTOMER["addresses"], "email": {"address": "m1@example.cn"}}})
    await engine.notify("m1", "repair", "normal", {"ticket_id": "T-77", "status": "维修中"})
    digest = await db["pref_digests"].find_one({"customer": "m1"})
    assert digest is not None
    (item,) = digest["items"].values()
    assert set(item["text"]) == {"wechat"} and "T-77" in item["text"]["wechat"]
    # Before the digest is due the customer moves to email (compact channels differ; email
    # is rich like WeChat, so the text is rendered again for email rather than reused).
    await prefs.change("m1", {"channels": ["email", "wechat"]}, actor="m1", via="chat")
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    assert msg["channel"] == "email" and msg["recipient"] == "m1@example.cn" and "T-77" in msg["text"]


async def test_the_sender_writes_a_digest_message_record_when_it_sends(mongo: AsyncMongoClient[Any]) -> None:
    store = MessageStore(mongo.get_default_database())
    reply = OutboundMessage(channel="email", account="", recipient="z@example.cn", conversation="email::z@example.cn",
                            idempotency_key="pref:d:abc:email", text="【今日汇总】共 1 条", topic="digest")
    await store.mark_outbound(reply.idempotency_key, "sent", reply=reply, attempts=1)
    doc = await mongo.get_default_database()["messages"].find_one({"_id": "out:pref:d:abc:email"})
    assert doc is not None
    assert (doc["status"], doc["text"], doc["recipient"], doc["topic"]) == ("sent", "【今日汇总】共 1 条", "z@example.cn", "digest")
    # Without the reply, a status mark never invents a record.
    await store.mark_outbound("pref:d:missing:email", "sent", attempts=1)
    assert await mongo.get_default_database()["messages"].find_one({"_id": "out:pref:d:missing:email"}) is None


async def _digest_to(prefs: PreferenceStore, engine: NotificationEngine, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any],
                     *, change_via_store: bool, lose_notes: bool = False) -> str:
    """File a digest item for a customer on email, move the customer's address, build;
    returns where the digest went."""
    db = mongo.get_default_database()
    # The change notes have been complete for a day (this Redis was empty before the test).
    await redis.set(CHANGED_SINCE_KEY, time.time() - 86_400)
    await prefs.create("k1", settings={"channels": ["email"], "addresses": {"email": {"address": "old@example.cn"}}, **DAILY})
    await engine.notify("k1", "repair", "normal", {"ticket_id": "T-5", "status": "x"})
    # The copy in the digest is older than the margin by the time the address changes.
    await db["pref_digests"].update_one({"customer": "k1"}, {"$inc": {"who_at": -2 * CHANGE_MARGIN_S}})
    if change_via_store:
        await prefs.change("k1", {"addresses": {"email": {"address": "new@example.cn"}}}, actor="k1", via="chat")
    else:  # behind the store's back: only the copy check can tell the two apart
        await db["pref_customers"].update_one({"_id": "k1"}, {"$set": {"settings.addresses.email.address": "new@example.cn"}})
    if lose_notes:
        await redis.delete(CHANGED_KEY, CHANGED_SINCE_KEY)
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    return str(msg["recipient"])


async def test_the_digests_copy_of_the_customer_is_used_when_the_store_noted_no_change(
    prefs: PreferenceStore, engine: NotificationEngine, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    # The record changed without the store (which the store's contract rules out): the
    # build did not read it, it used the digest's copy.
    assert await _digest_to(prefs, engine, redis, clock, mongo, change_via_store=False) == "old@example.cn"


async def test_a_change_through_the_store_makes_the_build_read_the_customer(
    prefs: PreferenceStore, engine: NotificationEngine, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    assert await _digest_to(prefs, engine, redis, clock, mongo, change_via_store=True) == "new@example.cn"


async def test_lost_change_notes_make_every_copy_suspect(
    prefs: PreferenceStore, engine: NotificationEngine, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    assert await _digest_to(prefs, engine, redis, clock, mongo, change_via_store=False, lose_notes=True) == "new@example.cn"
    assert await redis.get(CHANGED_SINCE_KEY) is not None  # notes restart from now


async def test_fallback_of_an_unsettled_digest_moves_it_to_the_next_channel_for_good(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    await prefs.create("f1", settings={**WECHAT_CUSTOMER, **DAILY})
    await engine.notify("f1", "repair", "normal", {"ticket_id": "T-8", "status": "维修中"})
    clock.advance(86_400)
    assert await engine.run_all_due(settle=False) == 1
    (first,) = await outbox_messages(redis)
    assert first["channel"] == "wechat"
    # WeChat's 48 h window has closed: the outbox gives up before the batch is settled.
    await engine.on_give_up(OutboundMessage.from_json(json.dumps(first)), "undeliverable", "45015")
    messages = await outbox_messages(redis)
    assert [m["channel"] for m in messages] == ["wechat", "email"] and "T-8" in messages[1]["text"]
    # Settling the batch afterwards does not put the record back on WeChat.
    await engine.settle()
    digest = await db["pref_digests"].find_one({"customer": "f1"})
    assert digest is not None
    assert (digest["status"], digest["channel"], digest["failed"]) == ("sent", "email", ["wechat"])


# -- the digest's text, rendered as it fills ------------------------------------------------


async def _filed(engine: NotificationEngine, prefs: PreferenceStore, mongo: AsyncMongoClient[Any], customer: str, n: int) -> dict[str, Any]:
    await prefs.create(customer, settings={**EMAIL, "addresses": {"email": {"address": f"{customer}@example.cn"}}, **DAILY})
    for i in range(n):
        await engine.notify(customer, "repair", "normal", {"ticket_id": f"T-{customer}-{i}", "status": "维修中"})
    digest = await mongo.get_default_database()["pref_digests"].find_one({"customer": customer})
    assert digest is not None
    return dict(digest)


async def test_each_filing_renders_the_whole_digest_and_the_build_sends_that_text(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    digest = await _filed(engine, prefs, mongo, "p1", 3)
    rendered = digest["rendered"]
    assert (digest["rev"], rendered["rev"], rendered["n"], rendered["channel"], rendered["language"]) == (3, 3, 3, "email", "zh")
    assert all(f"T-p1-{i}" in rendered["text"] for i in range(3))
    # The build sends the stored text as it is: a marker written into it shows up.
    await mongo.get_default_database()["pref_digests"].update_one(
        {"_id": digest["_id"]}, {"$set": {"rendered.text": rendered["text"] + "\n(stored text)"}}
    )
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    assert msg["text"].endswith("(stored text)") and msg["recipient"] == "p1@example.cn"


async def test_a_filing_that_died_before_its_render_makes_the_build_render_the_items(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    digest = await _filed(engine, prefs, mongo, "p2", 1)
    # A second item was filed (a new revision) but its filing died before it rendered.
    item = dict(next(iter(digest["items"].values())), created_at=digest["items"][next(iter(digest["items"]))]["created_at"] + 1)
    item["data"] = {"ticket_id": "T-p2-late", "status": "已完成"}
    item["text"] = {}
    await db["pref_digests"].update_one({"_id": digest["_id"]}, {"$set": {"items.late": item}, "$inc": {"rev": 1}})
    await db["pref_digests"].update_one({"_id": digest["_id"]}, {"$set": {"rendered.text": "(stale)"}})
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    assert "(stale)" not in msg["text"] and "T-p2-0" in msg["text"] and "T-p2-late" in msg["text"]
    assert "共 2 条" in msg["text"]


async def test_a_withdrawn_item_or_another_language_makes_the_build_render_again(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    db = mongo.get_default_database()
    a = await _filed(engine, prefs, mongo, "p3", 2)
    b = await _filed(engine, prefs, mongo, "p4", 1)
    # p3: one item leaves the record without a filing (the count no longer matches).
    await db["pref_digests"].update_one({"_id": a["_id"]}, {"$unset": {f"items.{next(iter(a['items']))}": ""}})
    # p4: the customer switches to English before the digest is due.
    await prefs.change("p4", {"language": "en"}, actor="p4", via="chat")
    clock.advance(86_400)
    assert await engine.run_all_due() == 2
    texts = {m["recipient"]: m["text"] for m in await outbox_messages(redis)}
    assert "共 1 条" in texts["p3@example.cn"]
    assert texts["p4@example.cn"] != b["rendered"]["text"] and "T-p4-0" in texts["p4@example.cn"]
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in texts["p4@example.cn"].splitlines()[0])  # an English heading


async def test_concurrent_filings_leave_a_text_with_every_item_or_none(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any]
) -> None:
    await prefs.create("p5", settings={**EMAIL, "addresses": {"email": {"address": "p5@example.cn"}}, **DAILY})
    await asyncio.gather(*(engine.notify("p5", "repair", "normal", {"ticket_id": f"T-c{i}", "status": "x"}) for i in range(8)))
    digest = await mongo.get_default_database()["pref_digests"].find_one({"customer": "p5"})
    assert digest is not None and len(digest["items"]) == 8 and digest["rev"] == 8
    r = digest.get("rendered")
    if r is not None and r["rev"] == digest["rev"]:  # the text that the build would reuse is complete
        assert all(f"T-c{i}" in r["text"] for i in range(8))
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    assert all(f"T-c{i}" in msg["text"] for i in range(8))


async def test_other_templates_are_not_served_a_text_rendered_with_the_builtin_ones(
    engine: NotificationEngine, prefs: PreferenceStore, redis: Redis, clock: ManualClock, mongo: AsyncMongoClient[Any], tmp_path: Path
) -> None:
    await _filed(engine, prefs, mongo, "p6", 1)

    def deployment_templates() -> Renderer:
        (tmp_path / "zh").mkdir()
        (tmp_path / "zh" / "digest.j2").write_text("自定义汇总 {{ total }}\n", encoding="utf-8")
        return Renderer(tmp_path)

    engine.renderer = await asyncio.to_thread(deployment_templates)  # the gateway restarted with a deployment's templates
    clock.advance(86_400)
    assert await engine.run_all_due() == 1
    (msg,) = await outbox_messages(redis)
    assert msg["text"] == "自定义汇总 1"
