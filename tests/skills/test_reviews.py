"""Bad-review remediation: webhook, pull with a cursor, CSV import, SLA breach, coupon,
reply, idempotency per review, outside failures, carrier performance."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from bot.config import settings_from_mapping
from skills.connectors.marketplace import Review
from skills.review_remediation.cli import import_rows
from skills.review_remediation.detect import extract, is_logistics
from tests.harness import Harness
from tests.skills.conftest import Fakes, auth, services, skills_config

ALIASES = {"顺丰": "SF", "sf": "SF", "sf express": "SF", "ups": "UPS", "j&t": "J&T", "中通": "ZTO"}


def test_detection_and_extraction() -> None:
    c = extract("Package arrived 5 days late via UPS, order 112-1234567-1234567", ALIASES)
    assert (c.order_id, c.carrier, c.days_late) == ("112-1234567-1234567", "UPS", 5)
    c = extract("顺丰 等了十二天才到，订单DD2024031500123", ALIASES)
    assert (c.order_id, c.carrier, c.days_taken) == ("DD2024031500123", "SF", 12)
    assert extract("物流太慢了 晚了三天", ALIASES).days_late == 3
    assert all(is_logistics(t) for t in ("物流慢", "还没到", "丢件了", "delivery was late", "still not arrived", "took 9 days"))
    assert not is_logistics("Great product, works well")


async def _wait(pred: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _amazon(rid: str, stars: int, body: str, order: str = "") -> dict[str, Any]:
    return {"reviewId": rid, "starRating": stars, "body": body, "orderId": order, "buyerName": "Ann", "marketplaceId": "US"}


async def test_webhook_review_is_remedied_once(plain_gateway: Harness, fakes: Fakes) -> None:
    h = plain_gateway
    item = _amazon("R1", 1, "Arrived 4 days late with UPS. Not happy.")
    for _ in range(2):  # the marketplace retries its push
        resp = await h.client.post("/api/reviews/webhook/amazon", json={"reviews": [item]}, headers=auth())
        assert resp.status == 200
    svc = services(h)

    async def resolved() -> bool:
        doc = await svc.db["reviews"].find_one({"_id": "amazon:R1"})
        return doc is not None and doc["status"] == "resolved"

    await _wait(resolved)
    doc = await svc.db["reviews"].find_one({"_id": "amazon:R1"})
    assert doc is not None and doc["breach"] and doc["days_late"] == 4 and doc["compensation"] == 12.0  # 3 USD/day
    assert [r["review_id"] for r in fakes.amazon.replies] == ["R1"]
    assert "4 day(s) late" in fakes.amazon.replies[0]["text"] and doc["coupon"]["code"] in fakes.amazon.replies[0]["text"]
    # Pulled again and imported again: still one answer.
    fakes.amazon.add(item)
    assert await svc.reviews.pull("amazon") == 1
    assert (await svc.reviews.ingest_and_process(Review("amazon", "R1", 1, "x"), via="csv")).status == "duplicate"
    assert len(fakes.amazon.replies) == 1 and len(fakes.coupons.issued) == 1
    perf = await (await h.client.get("/api/reviews/carriers", headers=auth())).json()
    ups = next(c for c in perf["carriers"] if c["carrier"] == "UPS")
    assert (ups["breach_rate"], ups["avg_delay_days"], ups["resolved_48h_rate"]) == (1.0, 4.0, 1.0)


async def test_webhook_signature_when_a_secret_is_configured(plain_gateway: Harness) -> None:
    svc = services(plain_gateway)
    market = svc.reviews.marketplace("shopee")
    assert market is not None
    object.__setattr__(market.settings, "options", {"webhook_secret": "shh"})
    body = json.dumps({"reviews": [{"comment_id": "S1", "rating_star": 2, "comment": "slow delivery", "region": "SG"}]}).encode()
    bad = await plain_gateway.client.post("/api/reviews/webhook/shopee", data=body, headers={"X-Kefu-Signature": "sha256=00"})
    assert bad.status == 401
    sig = hmac.new(b"shh", body, hashlib.sha256).hexdigest()
    ok = await plain_gateway.client.post("/api/reviews/webhook/shopee", data=body, headers={"X-Kefu-Signature": f"sha256={sig}"})
    assert ok.status == 200 and (await ok.json())["accepted"] == 1


async def test_pull_cursor_persists_and_good_reviews_are_left_alone(plain_gateway: Harness, fakes: Fakes) -> None:
    svc = services(plain_gateway)
    fakes.temu.add({"id": "T1", "score": 5, "content": "Love it", "site": "US"})
    fakes.temu.add({"id": "T2", "score": 1, "content": "物流太慢了，晚了三天，中通", "parent_order_sn": "PO-TEMU-0001", "site": "CN"})
    assert await svc.reviews.pull("temu") == 2
    assert (await svc.db["review_cursors"].find_one({"_id": "temu"}) or {})["cursor"] == "2"
    assert await svc.reviews.pull("temu") == 0  # nothing after the cursor
    t1 = await svc.db["reviews"].find_one({"_id": "temu:T1"})
    t2 = await svc.db["reviews"].find_one({"_id": "temu:T2"})
    assert t1 is not None and t1["status"] == "ignored"
    assert t2 is not None and t2["status"] == "resolved" and t2["carrier"] == "ZTO" and t2["compensation"] == 15.0
    assert "晚了 3 天" in fakes.temu.replies[0]["text"]  # Chinese review, Chinese answer


async def test_outside_failures_leave_the_review_pending_then_retried(plain_gateway: Harness, fakes: Fakes) -> None:
    svc = services(plain_gateway)
    fakes.coupons.down = True  # no coupon: no reply either (the message carries it)
    out = await svc.reviews.ingest_and_process(Review("amazon", "R9", 2, "Still not arrived after 2 weeks, USPS", region="US"), via="csv")
    assert out.status == "pending" and fakes.amazon.replies == []
    fakes.coupons.down = False
    fakes.amazon.down = True  # coupon issued, the marketplace refuses the reply
    assert await svc.reviews.retry_pending() == 1
    assert (await svc.db["reviews"].find_one({"_id": "amazon:R9"}) or {})["status"] == "pending"
    fakes.amazon.down = False
    assert await svc.reviews.retry_pending() == 1
    doc = await svc.db["reviews"].find_one({"_id": "amazon:R9"})
    assert doc is not None and doc["status"] == "resolved" and doc["days_late"] == 7 and doc["compensation"] == 10.0
    assert len(fakes.amazon.replies) == 1 and len(fakes.coupons.issued) == 1  # the retried issue returned the same coupon
    assert doc["coupon"]["code"] in fakes.amazon.replies[0]["text"]
    stats = await svc.db["carrier_stats"].find_one({"_id": "USPS"})
    assert stats is not None and stats["logistics_reviews"] == 1  # counted once across the tries


async def test_overdue_reviews_are_flagged_after_48h(plain_gateway: Harness, fakes: Fakes) -> None:
    from preferences.clock import ManualClock

    svc = services(plain_gateway)
    clock = ManualClock(1_800_000_000)
    svc.reviews.clock = clock
    fakes.amazon.down = True
    fakes.coupons.down = True
    await svc.reviews.ingest_and_process(Review("amazon", "R48", 1, "late delivery by 3 days via UPS"), via="csv")
    clock.advance(47 * 3600)
    assert await svc.reviews.track_overdue() == 0
    clock.advance(2 * 3600)
    assert await svc.reviews.track_overdue() == 1


async def test_csv_import_command(plain_gateway: Harness, fakes: Fakes, tmp_path: Path) -> None:
    rows = [
        {"marketplace": "amazon", "review_id": "C1", "rating": "1", "text": "5 days late, UPS", "region": "US"},
        {"marketplace": "amazon", "review_id": "C1", "rating": "1", "text": "5 days late, UPS", "region": "US"},
        {"marketplace": "ebay", "review_id": "C2", "rating": "1", "text": "late"},
        {"marketplace": "shopee", "review_id": "C3", "rating": "5", "text": "great"},
    ]
    db_url = plain_gateway.runtime.settings.mongo_url
    redis_url = plain_gateway.runtime.settings.redis_url
    assert db_url and redis_url
    cfg = skills_config(redis_url, db_url, "http://127.0.0.1:9", fakes, tmp_path)
    counts = await import_rows(settings_from_mapping(cfg, env={}), rows, progress=False)
    assert counts == {"resolved": 1, "duplicate": 1, "invalid": 1, "ignored": 1}


async def test_unconfigured_marketplace_is_not_revealed_before_authentication(plain_gateway: Harness) -> None:
    body = json.dumps({"reviews": []}).encode()
    for name in ("shopee", "no-such-market"):  # one configured, one not: the same answers
        stranger = await plain_gateway.client.post(f"/api/reviews/webhook/{name}", data=body)
        assert stranger.status == 401, name
        forged = await plain_gateway.client.post(f"/api/reviews/webhook/{name}", data=body, headers={"X-Kefu-Signature": "sha256=签名"})
        assert forged.status == 401, name
    known = await plain_gateway.client.post("/api/reviews/webhook/no-such-market", data=body, headers=auth())
    assert known.status == 404
