"""The carrier page's weekly chart and "reviews behind" list, and the digest schedule with
its 7-day calendar, follow their data live in every web process: the review skill, the
notification engine and the preference store announce their writes on Redis, the
console's one subscription per process relays them, and an open page gets its board
rendered again in its reader's language and time zone (and for its picked carrier)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from skills.connectors.marketplace import Review
from tests.console.conftest import Browserless, ConsoleRig
from tests.console.live import EventReader
from tests.console.test_boards_live import html, mia  # noqa: F401  (the second web process's marketer)
from tests.console.test_marketing import seed_customers, services


def chart(event: dict[str, Any]) -> dict[str, Any]:
    """The weekly chart's data as the board carries it (the page draws it again)."""
    found = re.search(r'<script type="application/json" id="carrier-data">(.*?)</script>', html(event), re.S)
    assert found, html(event)
    data: dict[str, Any] = json.loads(found.group(1))
    return data


async def test_carrier_chart_and_reviews_behind_follow_the_review_skill(rig: ConsoleRig, mia: Browserless) -> None:  # noqa: F811
    prefs, sk = services(rig)
    await seed_customers(prefs)
    picked = await EventReader.open(mia.http, mia.base + "/admin/marketing/carriers/events?carrier=unknown")
    plain = await EventReader.open(mia.http, mia.base + "/admin/marketing/carriers/events")
    try:
        first = await picked.next()  # the board as of the subscription
        assert 'id="carrier-reviews"' in html(first) and "data-review=" not in html(first)
        assert chart(first)["series"] == []
        assert 'id="carrier-reviews"' not in html(await plain.next())  # no carrier picked: no list

        # A bad review about a late parcel (no carrier named: "unknown"): the counters, the
        # week's breach rate and the list behind them move.
        await sk.reviews.ingest_and_process(Review("amazon", "R1", 1, "Arrived 4 days late. Not happy."), via="csv")
        seen = await picked.next(where=lambda e: "data-review=" in html(e))
        assert "Arrived 4 days late. Not happy." in html(seen) and "⚠" not in html(seen)
        assert chart(seen)["series"] == [["unknown", [100.0]]] and len(chart(seen)["labels"]) == 1
        other = await plain.next(where=lambda e: chart(e)["series"] != [])
        assert chart(other) == chart(seen) and 'id="carrier-reviews"' not in html(other)

        # Two days on, the review is still not resolved (its reply could not be sent): the
        # overdue check flags it, and the list shows the flag.
        review = await sk.db["reviews"].find_one({"kind": "logistics"})
        assert review is not None
        await sk.db["reviews"].update_one({"_id": review["_id"]}, {"$set": {"status": "pending", "resolve_by": time.time() - 1}})
        assert await sk.reviews.track_overdue() == 1
        flagged = await picked.next(where=lambda e: "⚠" in html(e))
        assert re.search(r'data-review="[^"]+">.*?<td>pending ⚠</td>', html(flagged), re.S), html(flagged)
    finally:
        picked.close()
        plain.close()
    page = await (await mia.get("/admin/marketing/carriers?carrier=unknown")).text()
    assert 'data-events="/admin/marketing/carriers/events?carrier=unknown"' in page
    assert "Arrived 4 days late. Not happy." in page and "pending ⚠" in page


async def test_schedule_follows_digest_times_and_what_waits(rig: ConsoleRig, mia: Browserless) -> None:  # noqa: F811
    prefs, _ = services(rig)
    await seed_customers(prefs)
    engine = prefs.engine
    schedule = await EventReader.open(mia.http, mia.base + "/admin/marketing/schedule/events")
    try:
        first = await schedule.next()
        assert "汇总发送时间" in html(first) and "份汇总" not in html(first)  # Mia's language; nothing waits
        assert re.search(r'data-topic="renewal">.*?<td>09:00</td>', html(first), re.S), html(first)

        # A marketer moves the renewal digests to 08:30 (in process B itself: its own
        # store announces, its own subscription hears it).
        saved = await mia.post("/admin/marketing/layers/default", {"topics.renewal.at": "08:30", "quiet_hours": "inherit", "action": "save"})
        assert saved.status == 303
        await schedule.next(where=lambda e: re.search(r'data-topic="renewal">.*?<td>08:30</td>', html(e), re.S) is not None)

        # Li takes renewal reminders daily: one is folded into tomorrow's digest (process A).
        await prefs.prefs.change("c-li", {"topics": {"renewal": {"frequency": "daily"}}, "quiet_hours": None}, actor="c-li", via="chat")
        await engine.notify("c-li", "renewal", "normal", {"contract_id": "K-1"}, key="r1")
        queued = await schedule.next(where=lambda e: "1 份汇总" in html(e))
        doc = await engine.notifications.find_one({"customer": "c-li", "topic": "renewal"})
        assert doc is not None and doc["status"] == "digest"
        assert re.search(r'<li class="digests">\d\d:\d\d · 1 份汇总</li>', html(queued)), html(queued)

        # A worker sends it (claimed from the due list) and settles: it no longer waits.
        member = f"d|{doc['digest_id']}"
        await engine.process([member], {member: float(doc["deliver_at"])})
        await engine.settle()
        await schedule.next(where=lambda e: "份汇总" not in html(e))
    finally:
        schedule.close()
    page = await (await mia.get("/admin/marketing/schedule")).text()
    assert 'data-live="board"' in page and "份汇总" not in page
