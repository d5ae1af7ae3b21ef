"""Review intake in batches: a page, a push or a file is stored with one insert_many and
remedied concurrently; one review that cannot be stored or processed fails alone, and
nothing is answered twice."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from skills.connectors.marketplace import Review
from tests.harness import Harness
from tests.skills.conftest import Fakes, auth, services

LATE = "Arrived {n} days late with UPS"


async def test_a_pushed_review_that_cannot_be_stored_fails_alone(
    plain_gateway: Harness, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    svc = services(plain_gateway)
    # A lone surrogate: valid JSON, decoded by Python, refused by every UTF-8 encoder (BSON).
    body = '{"reviews": [' + ", ".join(
        f'{{"reviewId": "P{i}", "starRating": 1, "body": "{text}", "marketplaceId": "US"}}'
        for i, text in enumerate([LATE.format(n=2), "late \\ud800 parcel", LATE.format(n=3)])
    ) + "]}"
    with caplog.at_level(logging.WARNING):
        resp = await plain_gateway.client.post(
            "/api/reviews/webhook/amazon", data=body.encode(), headers={**auth(), "Content-Type": "application/json"}
        )
    assert resp.status == 200
    assert await resp.json() == {"accepted": 2, "duplicates": 0, "failed": ["P1"]}
    assert await svc.db["reviews"].find_one({"_id": "amazon:P1"}) is None
    assert await svc.reviews.process_new() == 2
    statuses = {d["_id"]: d["status"] async for d in svc.db["reviews"].find({})}
    assert statuses == {"amazon:P0": "resolved", "amazon:P2": "resolved"}
    assert sorted(r["review_id"] for r in fakes.amazon.replies) == ["P0", "P2"]
    logged = [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()]
    assert len(logged) == 1 and "P1" not in logged[0]


async def test_a_batch_with_a_broken_stored_review_remedies_the_others(plain_gateway: Harness, fakes: Fakes) -> None:
    svc = services(plain_gateway)
    # Left behind by an older writer: no arrival time, which the remedy needs.
    await svc.db["reviews"].insert_one(
        {"_id": "amazon:OLD", "marketplace": "amazon", "review_id": "OLD", "rating": 1, "text": LATE.format(n=5), "status": "new"}
    )
    out = await svc.reviews.ingest_and_process_many(
        [Review("amazon", f"B{i}", 1, LATE.format(n=i + 1), region="US") for i in range(5)], via="csv"
    )
    assert [o.status for o in out] == ["resolved"] * 5
    assert await svc.reviews.process_new() == 1
    old = await svc.db["reviews"].find_one({"_id": "amazon:OLD"})
    assert old is not None and old["status"] == "failed"
    assert await svc.reviews.process_new() == 0  # failed is final: not claimed again
    assert sorted(r["review_id"] for r in fakes.amazon.replies) == [f"B{i}" for i in range(5)]


async def test_a_page_is_remedied_once_per_review_and_counted_once(plain_gateway: Harness, fakes: Fakes) -> None:
    svc = services(plain_gateway)
    reviews = [Review("amazon", f"M{i}", 1 if i % 3 else 5, LATE.format(n=2) if i % 3 else "Love it", region="US") for i in range(60)]
    first = await svc.reviews.ingest_and_process_many(reviews + reviews[:5], via="pull")  # repeats inside the batch
    assert [o.status for o in first[:60]] == ["ignored" if i % 3 == 0 else "resolved" for i in range(60)]
    assert [o.status for o in first[60:]] == ["duplicate"] * 5
    again = await svc.reviews.ingest_and_process_many(reviews, via="csv")
    assert {o.status for o in again} == {"duplicate"}
    bad = [r for r in reviews if r.rating == 1]
    assert len(fakes.amazon.replies) == len(bad) == len(fakes.coupons.issued)
    stats: dict[str, Any] = await svc.db["carrier_stats"].find_one({"_id": "UPS"}) or {}
    assert (stats["logistics_reviews"], stats["breaches"], stats["resolved"], stats["delay_days"]) == (len(bad), len(bad), len(bad), 2 * len(bad))
