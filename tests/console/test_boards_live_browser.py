"""The live boards in a real browser: a marketer keeps the repair-operations and
data-requests boards open while a ticket's outside step fails and an export is requested
and built elsewhere, the carrier page (with its chart and the reviews behind a figure)
while a late-parcel review is processed, and the digest schedule while the defaults'
digest time is changed; the boards change without a reload. The ticket is written by a ``Tickets`` of
its own, on its own MongoDB and Redis clients, as another process would: nothing but the
Redis announcement reaches the page. Screenshot: docs/console/marketing-repair-live.png.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from admin.roles import Role
from bot.announce import Announcer
from skills.connectors.marketplace import Review
from skills.repair_dispatch.tickets import CHANGED, Tickets
from tests.console.conftest import PASSWORD, ConsoleRig
from tests.console.test_browser import browser, shot  # noqa: F401  (the browser fixture)
from tests.console.test_marketing_browser import rig, seed, sign_in  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


async def signed_in_marketer(browser: Any, rig: ConsoleRig) -> Any:  # noqa: F811
    """The seeded workspace and Mia, a marketer, signed in: her page."""
    await seed(rig)
    await rig.console.users.create("mia", Role.MARKETER, PASSWORD)
    return await sign_in(browser, rig, "mia", "/admin/marketing/customers")


async def open_live(page: Any, url: str) -> None:
    """Open a live page and wait for its stream; ``window.kefuSamePage`` is gone if it reloads."""
    await page.goto(url)
    await page.locator("#live-status:not(.off)").wait_for()  # the stream is open
    await page.evaluate("window.kefuSamePage = true")


async def test_open_boards_follow_tickets_and_data_requests(browser: Any, rig: ConsoleRig, redis_url: str, mongo_url: str) -> None:  # noqa: F811
    page = await signed_in_marketer(browser, rig)
    prefs = rig.console.deps.preferences
    assert prefs is not None
    await open_live(page, rig.base + "/admin/marketing/repair")
    assert await page.locator('#repair-attention tr[data-ticket]').count() == 0

    # Another process's dispatch: its outside step fails on a new ticket.
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    redis = Redis.from_url(redis_url)
    try:
        tickets = Tickets(mongo.get_default_database(), announcer=Announcer(redis, CHANGED))
        ticket = await tickets.open(customer="wechat:demo:oX", conversation="wechat:demo:oX", source_message="m-live",
                                    fields={"device_model": "XK-8800"})
        await tickets.record("m-live", {"attention": {"reason": "servicenow failed", "at": time.time()},
                                        "engineer": {"id": "e7", "name": "王工"}, "status": "assigned"},
                             [{"at": time.time(), "step": "incident", "ok": False}])
        row = f'#repair-attention tr[data-ticket="{ticket["number"]}"]'
        # A selector, not wait_for_function: the console's CSP forbids the eval it needs.
        await page.wait_for_selector(f"{row} td:text-is('assigned')", timeout=5000)
        assert "servicenow failed" in await page.inner_text(row)
        await page.wait_for_selector('#engineer-load tr[data-engineer="e7"] td:text-is("1")', timeout=5000)
        await tickets.change_status("m-live", "on_the_way", at=time.time(), by="engineer:e7")
        await page.wait_for_selector(f"{row} td:text-is('on_the_way')", timeout=5000)
        assert await page.evaluate("window.kefuSamePage === true")
        await shot(page, "marketing-repair-live")
    finally:
        await mongo.close()
        await redis.aclose()

    # Data requests: an export asked for through the API path is listed, then ready.
    await open_live(page, rig.base + "/admin/marketing/data-requests")
    export_id, _ = await prefs.rights.export_my_data("c-li", via="api")
    await page.wait_for_selector(f'#data-requests tr[data-request="{export_id}"][data-status="ready"]', timeout=5000)
    assert await page.evaluate("window.kefuSamePage === true")
    await page.context.close()


async def test_open_carrier_and_schedule_boards_follow_reviews_and_digest_times(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    page = await signed_in_marketer(browser, rig)
    skills = rig.console.deps.skills
    assert skills is not None

    # The carrier page, with the reviews behind the unknown carrier's figures listed.
    await open_live(page, rig.base + "/admin/marketing/carriers?carrier=unknown")
    assert await page.locator("#carrier-reviews tr[data-review]").count() == 0
    await skills.reviews.ingest_and_process(Review("amazon", "R-live", 1, "Arrived 4 days late. Not happy."), via="csv")
    await page.wait_for_selector("#carrier-reviews tr[data-review] td:text-is('Arrived 4 days late. Not happy.')", timeout=5000)
    await page.wait_for_selector('#carrier-board tr[data-carrier="unknown"]', timeout=5000)
    # The chart came with the board and was drawn again (Chart.js styles the canvas it draws).
    await page.wait_for_selector('canvas#carrier-chart[style*="box-sizing"]', timeout=5000)
    assert await page.evaluate("window.kefuSamePage === true")

    # The schedule: a marketer (here, another one, in the defaults editor) moves the
    # renewal digests; the open schedule shows the new time.
    await open_live(page, rig.base + "/admin/marketing/schedule")
    prefs = rig.console.deps.preferences
    assert prefs is not None
    await prefs.prefs.put_layer("default", {"topics": {"renewal": {"at": "08:30"}}}, actor="mo", via="console")
    await page.wait_for_selector('#digest-times tr[data-topic="renewal"] td:text-is("08:30")', timeout=5000)
    assert await page.evaluate("window.kefuSamePage === true")
    await page.context.close()
