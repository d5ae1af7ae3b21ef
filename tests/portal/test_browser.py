"""The portal in a real browser on a phone-sized screen: Debian's chromium, Playwright.

A WeChat customer asks for their account link through the real signed webhook, opens
it, moves repair updates to a weekly digest, sets a rule that copies renewal quotes over
CNY 1,000,000 to their CTO (after previewing it), invites their CFO limited to
contracts, exports an encrypted ZIP and opens it with the password the page showed.
The next repair status notification follows the new preference; the CFO's view shows
only contracts. Screenshots go to docs/portal/.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import pyzipper

from preferences.model import Importance, Notification, Topic
from skills.services import SKILL_SERVICES
from tests.console.test_browser import browser  # noqa: F401  (the chromium fixture)
from tests.portal import seed
from tests.portal.conftest import LINK, PortalRig

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "portal"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "locale": "zh-CN", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.50"}

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # a full-page shot from an anchor repeats the sticky bar
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_a_wechat_customer_runs_their_account_on_a_phone(browser: Any, rig: PortalRig) -> None:  # noqa: F811
    openid = "o-phone-customer"
    reply, link = await rig.ask_link(openid)
    customer = await rig.deps.prefs.find_by_address("wechat", "demo", openid)
    assert customer is not None
    ticket = await seed.ticket(rig, openid, customer, status="new")
    await seed.contracts(rig, openid, customer, "C-PHONE")
    notifier = rig.harness.client.app[SKILL_SERVICES].notifier
    await notifier.notify(Notification(customer, Topic.RENEWAL, Importance.NORMAL,
                                       {"contract_id": "K-OLD", "product": "XK-9900", "amount": "CNY 1,545,000"}, key="earlier-quote"))

    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.goto(rig.base + link)
    await shot(page, "00-link")  # the link only asks to continue: a chat app's preview fetch does not use it
    await page.click("#link-continue")
    await page.wait_for_url("**/portal/")
    assert await page.locator(".tiles li").count() == 6
    await shot(page, "01-home")

    # How you hear from us: repair updates as a weekly digest.
    await page.click('nav.tabs a:has-text("通知方式")')
    await page.select_option('select[name="repair.frequency"]', "weekly")
    await page.click("form.settings button.primary")
    await page.wait_for_url("**/portal/notify")
    assert await page.locator('select[name="repair.frequency"]').input_value() == "weekly"
    await shot(page, "02-notify")

    # My rules: preview, then save "a renewal quote over CNY 1,000,000 also goes to our CTO".
    await page.click('nav.tabs a:has-text("我的规则")')
    await page.select_option('select[name="topic"]', "renewal")
    await page.select_option('select[name="condition"]', "amount_over")
    await page.fill('input[name="value"]', "1000000")
    await page.fill('input[name="email"]', "cto@example.cn")
    await page.click("#rule-preview")
    await page.wait_for_selector("#preview")
    assert "CNY 1,545,000" in await page.inner_text("#preview")
    await shot(page, "03-rule-preview")
    await page.click("#rule-save")
    await page.wait_for_selector(".rule")
    assert "cto@example.cn" in await page.inner_text(".rule")

    # Who may see what: the CFO, contracts only.
    await page.click('nav.tabs a:has-text("授权同事")')
    await page.fill('input[name="contact"]', "cfo@example.cn")
    await page.check('input[name="module.contracts"]')
    await page.click('button:has-text("生成邀请链接")')
    await page.wait_for_selector("#invite-link")
    invite = LINK.search(await page.inner_text("#invite-link"))
    assert invite is not None
    await shot(page, "04-people")

    # My data: an encrypted export, opened with the password shown once.
    await page.click('nav.tabs a:has-text("我的数据")')
    await page.click('button:has-text("生成加密压缩包")')
    await page.wait_for_selector("#export-password")
    password = (await page.inner_text("#export-password")).strip()
    await shot(page, "05-data-export")
    async with page.expect_download() as download_info:
        await page.click("#export-download")
    download = await download_info.value
    body = Path(await download.path()).read_bytes()
    assert password.encode() not in body
    with pyzipper.AESZipFile(io.BytesIO(body)) as zf:
        zf.setpassword(password.encode())
        data = json.loads(zf.read("data.json"))
        assert any(n.startswith("parquet/") for n in zf.namelist()) and any(n.startswith("csv/") for n in zf.namelist())
    assert data["preferences"][0]["topics"]["repair"]["frequency"] == "weekly"
    assert [r["email"] for r in data["notification_rules"]] == ["cto@example.cn"]
    assert {"preferences.change", "rule.add", "member.invite", "data.export"} <= {a["action"] for a in data["portal_audit"]}

    # The next repair status notification follows the new preference: into the weekly digest.
    sent_before = len(rig.harness.fake.sent_to(openid))
    await rig.deps.repair.set_status(ticket["_id"], "assigned")
    note = await rig.deps.db["notifications"].find_one({"customer": customer, "topic": "repair"})
    assert note is not None and (note["action"], note["period"]) == ("digest", "weekly")
    assert len(rig.harness.fake.sent_to(openid)) == sent_before
    await page.goto(rig.base + f"/portal/tickets/{ticket['_id']}")
    assert await page.locator(".qr img").count() == 1
    await shot(page, "06-ticket")
    await page.goto(rig.base + "/portal/contracts")
    await shot(page, "07-contracts")

    # The CFO, on their own phone: contracts and nothing else.
    cfo_context = await browser.new_context(**PHONE)
    cfo = await cfo_context.new_page()
    await cfo.goto(rig.base + invite.group())
    await cfo.click("#link-continue")
    await cfo.wait_for_url("**/portal/")
    tabs = await cfo.locator("nav.tabs a").all_inner_texts()
    assert tabs == ["我的合同"]
    await cfo.click('nav.tabs a:has-text("我的合同")')
    assert "K-C-PHONE-1" in await cfo.content()
    await shot(cfo, "08-colleague-contracts")
    response = await cfo.goto(rig.base + "/portal/tickets")
    assert response is not None and response.status == 403
    await cfo_context.close()
    await context.close()
    assert "一次" in reply
