"""The repair-operations and data-requests boards in a real browser, live: a marketer keeps
them open while a ticket's outside step fails and an export is requested and built
elsewhere; the boards change without a reload. The ticket is written by a ``Tickets`` of
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
from skills.repair_dispatch.tickets import CHANGED, Tickets
from tests.console.conftest import PASSWORD, ConsoleRig
from tests.console.test_browser import browser, shot  # noqa: F401  (the browser fixture)
from tests.console.test_marketing_browser import rig, seed, sign_in  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


async def test_open_boards_follow_tickets_and_data_requests(browser: Any, rig: ConsoleRig, redis_url: str, mongo_url: str) -> None:  # noqa: F811
    await seed(rig)
    prefs = rig.console.deps.preferences
    assert prefs is not None
    await rig.console.users.create("mia", Role.MARKETER, PASSWORD)
    page = await sign_in(browser, rig, "mia", "/admin/marketing/customers")
    await page.goto(rig.base + "/admin/marketing/repair")
    assert await page.locator('#repair-attention tr[data-ticket]').count() == 0
    await page.locator("#live-status:not(.off)").wait_for()  # the stream is open
    await page.evaluate("window.kefuSamePage = true")  # gone if the page reloads

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
    await page.goto(rig.base + "/admin/marketing/data-requests")
    await page.locator("#live-status:not(.off)").wait_for()
    await page.evaluate("window.kefuSamePage = true")
    export_id, _ = await prefs.rights.export_my_data("c-li", via="api")
    await page.wait_for_selector(f'#data-requests tr[data-request="{export_id}"][data-status="ready"]', timeout=5000)
    assert await page.evaluate("window.kefuSamePage === true")
    await page.context.close()
