"""The marketers' workspace in a real browser (Debian's chromium, Playwright).

A marketer signs in, makes weekly digests the default for renewal reminders, sees how
many customers that decides before saving, saves; the next renewal reminder of an
affected customer is folded into a digest (read back from the store), while a customer
who chose immediate reminders herself keeps them. A template edit with a syntax error is
refused with the error on the page; a valid edit changes the next reminder that reaches
the fake WeChat API, and restoring the shipped version brings the old text back. A
rule's dry run lists the expected contracts. An agent cannot open these pages.
Screenshots go to docs/console/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from admin.roles import Role
from channels.wechat.fake_api import FakeWeChatAPI
from tests.console.conftest import PASSWORD, ConsoleRig, make_rig
from tests.console.test_browser import browser, shot, wait_sent  # noqa: F401  (the browser fixture)
from tests.console.test_marketing import seed_boards

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O

DAY = 86_400.0


@pytest.fixture
async def rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> AsyncIterator[ConsoleRig]:
    # The daily renewal scan stays off: the test runs the scan when it wants one.
    r = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, renewal={"daily": False})
    yield r
    for http in r.sessions:
        await http.close()


async def seed(rig: ConsoleRig) -> None:
    deps = rig.console.deps
    assert deps.preferences is not None and deps.skills is not None
    store, db = deps.preferences.prefs, deps.skills.db
    await store.create("c-li", profile={"name": "李雷", "phone": "13812345678"}, segments=["vip"],
                       settings={"addresses": {"wechat": {"account": "demo", "openid": "oLiLei"}}}, actor="crm-import", via="api")
    await store.create("c-han", profile={"name": "韩梅梅", "phone": "13900001111"},
                       settings={"addresses": {"wechat": {"account": "demo", "openid": "oHan"}}}, actor="crm-import", via="api")
    # Han chose, in chat, to hear about renewals at once and at any hour.
    await store.change("c-han", {"topics": {"renewal": {"frequency": "immediate"}}, "quiet_hours": None}, actor="c-han", via="chat")
    await db["contracts"].delete_many({})
    await db["crm_customers"].insert_many([
        {"_id": "C-LI", "name": "李雷贸易", "pref_customer": "c-li", "language": "zh"},
        {"_id": "C-HAN", "name": "韩梅梅工作室", "pref_customer": "c-han", "language": "zh"},
    ])


async def contract(rig: ConsoleRig, cid: str, customer: str, days: float, amount: float) -> None:
    assert rig.console.deps.skills is not None
    now = time.time()
    await rig.console.deps.skills.db["contracts"].insert_one(
        {"_id": cid, "customer": customer, "product": "XK 维保", "kind": "maintenance", "start": now - 300 * DAY,
         "end": now + days * DAY, "amount": amount, "currency": "CNY", "past_contracts": 4}
    )


async def sign_in(browser: Any, rig: ConsoleRig, name: str, home: str) -> Any:  # noqa: F811
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    await page.goto(rig.base + "/admin/signin")
    await page.fill('input[name="name"]', name)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"**{home}")
    return page


async def test_marketer_workspace_in_the_browser(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    await seed(rig)
    deps = rig.console.deps
    assert deps.preferences is not None and deps.skills is not None
    renewals, db = deps.skills.renewals, deps.skills.db
    fake = rig.harness.fake
    await rig.console.users.create("mia", Role.MARKETER, PASSWORD)
    await rig.console.users.create("al", Role.AGENT, PASSWORD)
    page = await sign_in(browser, rig, "mia", "/admin/marketing/customers")

    # Customers: search by name; the phone is masked.
    await page.fill('input[name="name"]', "李")
    await page.click("#customer-search button")
    row = page.locator('tr[data-customer="c-li"]')
    await row.wait_for()
    assert "138****5678" in await row.inner_text()
    await shot(page, "marketing-customers")
    # A segment alone (read from the segment's remembered sample): members only.
    await page.goto(rig.base + "/admin/marketing/customers?segment=vip")
    await page.locator('tr[data-customer="c-li"]').wait_for()
    assert await page.locator('tr[data-customer="c-han"]').count() == 0
    await shot(page, "marketing-customers-segment")
    await page.goto(rig.base + "/admin/marketing/customers/c-han")
    cell = page.locator('td[data-path="topics.renewal.frequency"]')
    assert "客户本人选择" in await cell.inner_text()
    assert await page.locator("#history .own-choice").count() >= 1
    await shot(page, "marketing-customer")

    # Default renewal frequency -> weekly digest: the count first, then save.
    await page.goto(rig.base + "/admin/marketing/layers?layer=default")
    await page.select_option('select[name="topics.renewal.frequency"]', "weekly")
    await page.locator("#layer-preview #affected-count").wait_for()  # the live count, as the field changed
    await page.click("#preview-button")
    await page.wait_for_selector("#save-button")
    assert await page.inner_text("#affected-count") == "1"  # Li; Han's own choice stands
    await shot(page, "marketing-defaults-preview")
    assert await deps.preferences.prefs.get_layer("default") == {}
    await page.click("#save-button")
    await page.wait_for_url("**/admin/marketing/layers?layer=default")
    assert "影响 1 位客户" in await page.inner_text(".flash")

    # The next renewal reminder for Li is folded into a digest; Han's is sent at once.
    await contract(rig, "K-LI", "C-LI", 25, 2_000_000)
    await contract(rig, "K-HAN", "C-HAN", 25, 50_000)
    await contract(rig, "K-FAR", "C-LI", 200, 3_000_000)
    report = await renewals.scan()
    assert report.sent == 2
    li = await db["notifications"].find_one({"customer": "c-li", "topic": "renewal"})
    assert li is not None and li["action"] == "digest" and li["period"] == "weekly"
    digest = await db["pref_digests"].find_one({"_id": li["digest_id"]})
    assert digest is not None and li["_id"] in digest["items"] and digest["status"] == "scheduled"
    shipped = (await wait_sent(fake, "oHan", 1))[-1]
    assert shipped.startswith("【续约提醒】合同 K-HAN")
    assert not fake.sent_to("oLiLei")

    # A template with a syntax error is refused, the error shown; nothing stored.
    await page.goto(rig.base + "/admin/marketing/templates/edit?key=zh/renewal.j2")
    await page.fill("#template-source", "【续约】{% if data.amount %}金额 {{ data.amount }")
    await page.locator("#template-error:not([hidden])").wait_for()  # the live preview's verdict
    await page.click("#template-save")
    await page.wait_for_load_state()
    error = await page.inner_text("#template-error")
    assert "line 1" in error
    assert await page.input_value("#template-source") == "【续约】{% if data.amount %}金额 {{ data.amount }"  # kept as typed
    await shot(page, "marketing-template-error")
    assert await deps.preferences.templates.versions("zh/renewal.j2") == []

    # A valid edit: the live preview shows it, saving changes the next message on WeChat.
    new = "【续约提醒·新版】{{ data.get('contract_id') }} 将于 {{ data.get('expires') }} 到期，续约价 {{ data.get('amount') }}"
    await page.fill("#template-source", new)
    await page.locator('.preview-text[data-detail="standard"]', has_text="【续约提醒·新版】K-2026-001").wait_for()
    await page.click("#template-save")
    await page.wait_for_url("**/admin/marketing/templates/edit?key=zh/renewal.j2")
    await shot(page, "marketing-template-saved")
    await contract(rig, "K-HAN-2", "C-HAN", 20, 60_000)
    assert (await renewals.scan()).sent == 1
    edited = (await wait_sent(fake, "oHan", 2))[-1]
    assert edited.startswith("【续约提醒·新版】K-HAN-2 将于") and "续约价 CNY 61,800" in edited

    # Restoring the shipped version brings the old text back.
    await page.click("#restore-shipped")
    await page.wait_for_url("**/admin/marketing/templates/edit?key=zh/renewal.j2")
    await contract(rig, "K-HAN-3", "C-HAN", 15, 70_000)
    assert (await renewals.scan()).sent == 1
    restored = (await wait_sent(fake, "oHan", 3))[-1]
    assert restored.startswith("【续约提醒】合同 K-HAN-3")
    await page.goto(rig.base + "/admin/marketing/templates/diff?key=zh/renewal.j2&a=1&b=2")
    assert "【续约提醒·新版】" in await page.inner_text("#template-diff")

    # A rule's dry run lists the contracts it would hit today.
    await page.goto(rig.base + "/admin/marketing/rules/big_deal")
    await page.fill('input[name="name"]', "大单：通知销售")
    await page.fill('textarea[name="when"]', '{"all": [{"field": "amount", "op": ">", "value": 1000000}]}')
    await page.fill('textarea[name="then"]', '[{"action": "sales_todo"}]')
    await page.click("#dry-run")
    await page.wait_for_selector("#dry-run-hits")
    hits = await page.locator("#dry-run-hits tr[data-contract]").evaluate_all("rows => rows.map(r => r.dataset.contract)")
    assert hits == ["K-LI"]  # K-FAR is outside the 60-day window; the others are small
    await shot(page, "marketing-rule-dry-run")
    await page.fill('textarea[name="when"]', '{"field": "amount", "op": "eval", "value": 1}')
    await page.locator("#rule-error:not([hidden])", has_text="when.op").wait_for()  # validated as typed

    # The dashboards.
    await seed_boards(deps.preferences, deps.skills)
    await deps.preferences.activity.rollup()
    for path, name in (("activity", "marketing-activity"), ("schedule", "marketing-schedule"), ("carriers", "marketing-carriers"),
                       ("repair", "marketing-repair"), ("data-requests", "marketing-data-requests")):
        await page.goto(rig.base + "/admin/marketing/" + path)
        await shot(page, name)
    await page.goto(rig.base + "/admin/marketing/activity")
    assert await page.inner_text('#activity-totals [data-outcome="digest"] strong') == "1"
    assert await page.evaluate("document.getElementById('activity-chart').width") > 0
    await page.click("button.link:has-text('English')")  # the same page in English
    await page.wait_for_url("**/admin/marketing/activity")
    assert "Folded into digests" in await page.inner_text("#activity-totals")
    await shot(page, "marketing-activity-en")
    await page.context.close()

    # An agent cannot open any of these pages, and is offered none.
    agent = await sign_in(browser, rig, "al", "/admin/inbox")
    assert await agent.locator('nav a[href^="/admin/marketing"]').count() == 0
    for path in ("customers", "customers/c-li", "layers", "templates", "rules", "activity", "schedule", "carriers", "repair", "data-requests"):
        resp = await agent.goto(rig.base + "/admin/marketing/" + path)
        assert resp is not None and resp.status == 403, path
    assert "您的角色无权访问此页面" in await agent.inner_text("main")
    await agent.context.close()
    await asyncio.sleep(0)
