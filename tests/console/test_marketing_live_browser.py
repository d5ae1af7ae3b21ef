"""The activity dashboard in a real browser, live: a marketer keeps it open while a
campaign goes out through the real engine (and reaches the fake WeChat API); the figures
change on the page within seconds, without a reload. Screenshot:
docs/console/marketing-dashboard-live.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from admin.roles import Role
from preferences.model import Importance, Notification, Topic
from tests.console.conftest import PASSWORD, ConsoleRig
from tests.console.test_browser import browser, shot, wait_sent  # noqa: F401  (the browser fixture)
from tests.console.test_marketing_browser import rig, seed, sign_in  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O

SENT = '#activity-totals [data-outcome="sent"] strong'


async def test_the_open_dashboard_follows_a_campaign(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    await seed(rig)
    prefs = rig.console.deps.preferences
    assert prefs is not None
    await rig.console.users.create("mia", Role.MARKETER, PASSWORD)
    await prefs.activity.rollup()
    page = await sign_in(browser, rig, "mia", "/admin/marketing/customers")
    await page.goto(rig.base + "/admin/marketing/activity?days=1")
    assert await page.inner_text(SENT) == "0"
    await page.locator("#live-status:not(.off)").wait_for()  # the stream is open
    await page.evaluate("window.kefuSamePage = true")  # gone if the page reloads

    # Three renewal reminders Han asked to get at once, sent as one batch.
    campaign = [Notification("c-han", Topic.RENEWAL, Importance.CRITICAL, {"contract_id": f"K-{i}"}, key=f"winter-{i}") for i in range(3)]
    await prefs.engine.notify_many(campaign)
    await wait_sent(rig.harness.fake, "oHan", 3)  # they really went out
    # A selector, not wait_for_function: the console's CSP forbids the eval that a polled
    # function needs (it only worked when the figure was already there at the first look).
    await page.wait_for_selector(f"{SENT}:text-is('3')", timeout=5000)
    assert await page.evaluate("window.kefuSamePage === true")
    assert await page.inner_text('#activity-topics tr[data-topic="renewal"] td:nth-of-type(1)') == "3"
    # The chart's bar for this hour too.
    bars = await page.evaluate("Chart.getChart(document.getElementById('activity-chart')).data.datasets[0].data")
    assert sum(bars) == 3
    await shot(page, "marketing-dashboard-live")
    await page.context.close()
