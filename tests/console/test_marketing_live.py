"""The activity dashboard follows the engine live: counts added per batch in Redis, read
with the last rollup's figures, and pushed to open pages over the console's live stream."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from admin.roles import Role
from bot.messages import OutboundMessage
from preferences.delivery import KEY_PREFIX
from tests.console.conftest import ConsoleRig
from tests.console.test_marketing import seed_customers, services

TOTALS = re.compile(r'data-outcome="(\w+)"[^>]*><strong>(\d+)</strong>')


async def totals(person: Any) -> dict[str, int]:
    page = await (await person.get("/admin/marketing/activity?days=7")).text()
    return {o: int(n) for o, n in TOTALS.findall(page)}


async def next_activity(resp: Any, timeout_s: float = 10.0) -> dict[str, Any]:
    """The next ``activity`` frame of a server-sent event stream."""
    async with asyncio.timeout(timeout_s):
        event = ""
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "activity":
                return dict(json.loads(line[6:]))


async def test_counts_are_live_before_a_rollup_and_counted_once_after(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    await seed_customers(prefs)
    engine = prefs.engine
    mo = await rig.person("mo", Role.MARKETER)
    sent = await engine.notify("c-han", "renewal", "critical", {"contract_id": "K-2"}, key="r2")  # critical: sent now
    assert (await totals(mo))["sent"] == 1  # no rollup has run: the engine's own count
    assert await prefs.activity.rollup() == 1
    assert (await totals(mo))["sent"] == 1  # the rollup took it over; not counted twice

    # WeChat, Han's only channel, gives up on it: the record moves from sent to failed.
    give_up = OutboundMessage(channel="wechat", account="demo", recipient="oHan", conversation="wechat:demo:oHan",
                              idempotency_key=f"{KEY_PREFIX}n:{sent.notification_id}:wechat")
    await engine.on_give_up(give_up, "undeliverable", "45015")
    now = await totals(mo)
    assert (now["sent"], now["failed"]) == (0, 1)
    await prefs.activity.rollup()
    assert await totals(mo) == now


async def test_an_open_page_gets_the_new_figures(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    await seed_customers(prefs)
    mo = await rig.person("mo", Role.MARKETER)
    await prefs.activity.rollup()
    resp = await mo.get("/admin/marketing/activity/events?days=7", headers={"Accept": "text/event-stream"})
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    try:
        first = await next_activity(resp)  # the figures as of the subscription
        assert first["totals"]["digest"] == 0
        await prefs.prefs.change("c-li", {"topics": {"renewal": {"frequency": "daily"}}, "quiet_hours": None}, actor="c-li", via="chat")
        await prefs.engine.notify("c-li", "renewal", "normal", {"contract_id": "K-1"}, key="r1")  # folded into a digest
        update = await next_activity(resp)
        assert update["totals"]["digest"] == 1
        assert update["topics"]["renewal"]["digest"] == 1
        assert sum(period["digest"] for period in update["series"]) == 1
    finally:
        resp.close()
