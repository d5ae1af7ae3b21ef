"""The console in a real browser: Debian's chromium driven by Playwright.

An agent signs in; a WeChat customer asks for a person through the real signed and
encrypted webhook; the conversation appears in the open inbox without a reload; the
agent claims it, plays the customer's voice note (AMR kept from the fake WeChat API at
receipt, played after the platform forgot it, converted to WAV) next to Whisper's transcript, replies (the reply reaches the fake
WeChat API), and hands back; the bot answers the next message. Then two agents claim
one conversation at the same moment in two browser contexts: one wins, the other is
told who has it. Screenshots of the main pages go to docs/console/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from admin.roles import Role
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import voice_xml
from tests.console.conftest import PASSWORD, ConsoleRig, make_rig
from tests.harness import next_msg_id
from tests.speech.conftest import Clips, clips, model_path  # noqa: F401  (session fixtures)

CHROMIUM = os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright (see .ci/install-browser.sh)")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (bash .ci/install-browser.sh)")
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield b
        await b.close()


@pytest.fixture
async def voice_rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, model_path: str) -> AsyncIterator[ConsoleRig]:  # noqa: F811
    r = await make_rig(
        aiohttp_client, fake_wechat, redis_url, mongo_url,
        speech={"enabled": True, "engine": "faster", "model_path": model_path, "low_confidence": 0.0},
    )
    yield r
    for http in r.sessions:
        await http.close()


async def sign_in(browser: Any, rig: ConsoleRig, name: str, *, locale: str = "zh-CN", lands: str = "**/admin/inbox") -> Any:
    context = await browser.new_context(locale=locale, viewport={"width": 1366, "height": 860})
    page = await context.new_page()
    await page.goto(rig.base + "/admin/signin")
    await page.fill('input[name="name"]', name)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(lands)
    return page


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def wait_sent(fake: FakeWeChatAPI, sender: str, count: int, timeout_s: float = 15.0) -> list[str]:
    for _ in range(int(timeout_s / 0.05)):
        texts = [s["text"]["content"] for s in fake.sent_to(sender)]
        if len(texts) >= count:
            return texts
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sender} received {fake.sent_to(sender)}, expected {count} messages")


async def test_agent_takes_over_a_wechat_customer_in_the_browser(browser: Any, voice_rig: ConsoleRig, clips: Clips) -> None:  # noqa: F811
    rig = voice_rig
    fake = rig.harness.fake
    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    await rig.console.canned.add("zh", "问候", "您好，我是人工客服，请问有什么可以帮您？")
    page = await sign_in(browser, rig, "alice")
    await page.evaluate("window.__noReload = true")
    await page.wait_for_selector("#live-status:not(.off)", state="attached")

    assert (await rig.harness.say("oBrowser", "转人工")).status == 200
    row = page.locator('tr[data-conversation="wechat:demo:oBrowser"]')
    await row.wait_for(timeout=5000)
    assert await page.evaluate("window.__noReload") is True  # it arrived live, no reload
    assert "客户要求转人工" in await row.inner_text()  # the live row in the agent's language
    await shot(page, "inbox")

    await row.locator("button", has_text="接入").click()
    await page.wait_for_url("**/admin/conversations/wechat:demo:oBrowser")
    await page.evaluate("window.__noReload = true")
    await page.wait_for_selector("#live-status:not(.off)", state="attached")

    media_id = fake.add_media(clips.read("en_model.amr"))
    assert (await rig.harness.post_xml(voice_xml("oBrowser", media_id, next_msg_id()))).status == 200
    voice = page.locator("li.msg.in .voice").last
    await voice.wait_for(timeout=30000)  # Whisper transcribes before the event is published
    assert "air conditioner" in (await voice.inner_text()).lower()
    fake.media.clear()  # WeChat lets temporary media go after 3 days: the console plays its own copy
    played = await page.evaluate(
        """async () => {
            const a = document.querySelector('li.msg .voice audio');
            a.muted = true;
            await a.play();
            await new Promise(r => setTimeout(r, 300));
            return {duration: a.duration, time: a.currentTime, error: a.error && a.error.code};
        }"""
    )
    assert played["error"] is None and played["duration"] > 2.0 and played["time"] > 0.0

    poison = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    assert (await rig.harness.say("oBrowser", poison)).status == 200
    await page.locator("li.msg.in p.text", has_text="<img src=x").wait_for(timeout=5000)
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("li.msg img").count() == 0

    before = len(fake.sent_to("oBrowser"))
    await page.select_option("#canned", label="问候")
    await page.click("#reply-form button")
    await page.wait_for_url("**/admin/conversations/wechat:demo:oBrowser")
    texts = await wait_sent(fake, "oBrowser", before + 1)
    assert texts[-1] == "您好，我是人工客服，请问有什么可以帮您？"
    await page.locator("li.msg.out p.text", has_text="我是人工客服").first.wait_for()
    await shot(page, "conversation")

    before = len(fake.sent_to("oBrowser"))
    await page.click("#handback")
    await page.wait_for_url("**/admin/inbox")
    await wait_sent(fake, "oBrowser", before + 1)  # "the assistant is back"
    assert (await rig.harness.say("oBrowser", "你好")).status == 200
    texts = await wait_sent(fake, "oBrowser", before + 2)  # the bot answers again
    assert texts[-1] and texts[-1] != texts[-2]
    await page.context.close()


async def test_two_agents_claim_at_once_in_two_browsers(browser: Any, voice_rig: ConsoleRig) -> None:
    rig = voice_rig
    for name in ("alice", "bob"):
        await rig.console.users.create(name, Role.AGENT, PASSWORD)
    alice = await sign_in(browser, rig, "alice")
    bob = await sign_in(browser, rig, "bob", locale="en-GB")
    await bob.click("button.link:has-text('English')")  # bob works in English
    await bob.wait_for_url("**/admin/inbox")
    for page in (alice, bob):
        await page.wait_for_selector("#live-status:not(.off)", state="attached")
    assert (await rig.harness.say("oRace", "人工客服")).status == 200
    rows = [p.locator('tr[data-conversation="wechat:demo:oRace"] button') for p in (alice, bob)]
    for r in rows:
        await r.wait_for(timeout=5000)
    await asyncio.gather(*(r.click() for r in rows))
    for page in (alice, bob):
        await page.wait_for_load_state()
    state = await rig.harness.runtime.states.get("wechat:demo:oRace")
    assert state is not None and state.agent in ("alice", "bob")
    winner, loser = (alice, bob) if state.agent == "alice" else (bob, alice)
    assert await winner.locator("#reply-form").count() == 1
    assert "/admin/inbox" in loser.url
    told = "该会话已由 {} 接入" if loser is alice else "{} has this conversation already"
    assert told.format(state.agent) in await loser.locator(".flash").inner_text()
    await shot(loser, "claim-race-loser")


async def test_admin_pages_screenshots(browser: Any, voice_rig: ConsoleRig) -> None:
    rig = voice_rig
    await rig.console.users.create("ada", Role.ADMIN, PASSWORD)
    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 860})
    page = await context.new_page()
    await page.goto(rig.base + "/admin/signin")
    await shot(page, "signin")
    page = await sign_in(browser, rig, "ada")

    await page.goto(rig.base + "/admin/users")
    await page.fill('form[action="/admin/users"] input[name="name"]', "mia")
    await page.select_option('form[action="/admin/users"] select[name="role"]', "marketer")
    await page.fill('form[action="/admin/users"] input[name="password"]', PASSWORD)
    await page.click('form[action="/admin/users"] button')
    await page.wait_for_url("**/admin/users")
    assert "mia" in await page.locator("table.list").inner_text()

    await page.goto(rig.base + "/admin/canned")
    await page.fill('input[name="title"]', "稍等")
    await page.fill('textarea[name="text"]', "请稍等，我马上为您查询。")
    await page.click('form[action="/admin/canned"] button')
    await page.wait_for_url("**/admin/canned")

    await page.goto(rig.base + "/admin/apikeys")
    await page.fill('input[name="label"]', "CRM")
    await page.check('input[value="conversations:read"]')
    await page.click("text=创建密钥")
    key = await page.locator("#created-key").inner_text()
    assert key.startswith("kefu_")
    await shot(page, "apikeys")
    await page.goto(rig.base + "/admin/apikeys")
    assert await page.locator("#created-key").count() == 0  # shown once
    assert "CRM" in await page.locator("table.list").inner_text()
    stored = [d async for d in rig.console.deps.db["api_keys"].find({})]
    assert len(stored) == 1 and key not in str(stored)  # only the digest is kept

    for path in ("users", "canned", "channels", "outbox", "audit"):
        await page.goto(rig.base + "/admin/" + path)
        await shot(page, path)
    audit = await page.locator("table.audit").inner_text()
    assert "user.create" in audit and "canned.add" in audit and "apikey.create" in audit

    tablet = await browser.new_context(locale="zh-CN", viewport={"width": 820, "height": 1180}, is_mobile=True, has_touch=True)
    agent = await tablet.new_page()
    await agent.goto(rig.base + "/admin/signin")
    await agent.fill('input[name="name"]', "alice")
    await agent.fill('input[name="password"]', PASSWORD)
    await agent.click('button[type="submit"]')
    await agent.wait_for_url("**/admin/inbox")
    assert (await rig.harness.say("oTablet", "人工")).status == 200
    await agent.locator('tr[data-conversation="wechat:demo:oTablet"]').wait_for(timeout=5000)
    await shot(agent, "inbox-tablet")
    await tablet.close()
    await context.close()


async def test_a_page_that_lost_its_stream_catches_up(browser: Any, voice_rig: ConsoleRig) -> None:
    rig = voice_rig
    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    page = await sign_in(browser, rig, "alice")
    assert (await rig.harness.say("oGap", "转人工")).status == 200
    row = page.locator('tr[data-conversation="wechat:demo:oGap"] button')
    await row.wait_for(timeout=5000)
    await row.click()
    await page.wait_for_url("**/admin/conversations/wechat:demo:oGap")
    await page.wait_for_selector("#live-status:not(.off)", state="attached")
    await page.fill("#reply-form textarea", "正在输入的回复")
    await rig.console.hub.close()  # every open stream ends, as when a web process restarts
    assert (await rig.harness.say("oGap", "断线期间的消息")).status == 200
    await page.locator("li.msg.in p.text", has_text="断线期间的消息").wait_for(timeout=10000)
    assert await page.input_value("#reply-form textarea") == "正在输入的回复"  # the draft survives
    await page.context.close()


async def test_skills_actions_inline_on_the_conversation_page(browser: Any, rig: ConsoleRig) -> None:
    from tests.console.test_conversation_actions import CID, SENDER, take_actions

    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    taken = await take_actions(rig)
    page = await sign_in(browser, rig, "alice")
    await page.goto(rig.base + f"/admin/conversations/{CID}")
    actions = page.locator("li.action")
    assert await actions.evaluate_all("els => els.map(e => e.dataset.action)") == ["ticket", "renewal", "remedy", "case"]
    ticket = page.locator("li.action.ticket")
    assert taken.ticket in await ticket.inner_text()
    await ticket.locator("summary").click()
    await ticket.locator(".steps li", has_text="状态变更").wait_for()  # the timeline opens in place
    await shot(page, "conversation-actions")

    # A skill acts while the page is open: the action appears with the bot's answer.
    await page.wait_for_selector("#live-status:not(.off)", state="attached")
    await page.evaluate("window.__noReload = true")
    services: Any = rig.console.deps.skills
    second = await services.tickets.open(customer=CID, conversation=CID, source_message="in:actions:2", fields={"device_model": "XK-9900"})
    assert (await rig.harness.say(SENDER, "转人工")).status == 200
    await page.locator("li.action.ticket", has_text=second["number"]).wait_for(timeout=5000)
    assert await page.evaluate("window.__noReload") is True
    await page.context.close()


async def test_canned_edited_in_place_and_a_customer_message_retried(browser: Any, voice_rig: ConsoleRig, clips: Clips) -> None:  # noqa: F811
    rig, fake = voice_rig, voice_rig.harness.fake
    await rig.console.users.create("ada", Role.ADMIN, PASSWORD)
    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    reply = await rig.console.canned.add("zh", "稍等", "请稍等。")
    admin = await sign_in(browser, rig, "ada")
    await admin.goto(rig.base + "/admin/canned")
    row = admin.locator(f'tr[data-canned="{reply.id}"]')
    await row.locator('input[name="title"]').fill("稍等片刻")
    await row.locator('textarea[name="text"]').fill("请稍等，我马上为您查询。")
    await row.locator("button", has_text="保存").click()
    await admin.wait_for_url("**/admin/canned")
    assert [(r.title, r.text) for r in await rig.console.canned.all()] == [("稍等片刻", "请稍等，我马上为您查询。")]
    await shot(admin, "canned")
    entry = (await rig.console.audit.recent())[0]
    assert entry.action == "canned.change" and entry.before["title"] == "稍等" and entry.after["title"] == "稍等片刻"

    # WeChat's media API is down: the worker gives up on a voice note it cannot hear.
    fake.fail_next(100, path="/cgi-bin/media/get", status=500)
    media_id = fake.add_media(clips.read("en_model.amr"))
    assert (await rig.harness.post_xml(voice_xml("oRetry", media_id, next_msg_id()))).status == 200
    store = rig.harness.runtime.store
    for _ in range(600):
        if await store.dead_letters.count_documents({"kind": "inbound"}):
            break
        await asyncio.sleep(0.05)
    agent = await sign_in(browser, rig, "alice")
    await agent.goto(rig.base + "/admin/outbox")
    row = agent.locator("table.list tr", has_text="inbound")
    await shot(agent, "outbox")
    fake.clear_failures()  # the platform is back
    await row.locator("button", has_text="重试").click()
    await agent.wait_for_url("**/admin/outbox")
    assert "客户消息已重新交给机器人处理" in await agent.locator(".flash").inner_text()
    assert await store.dead_letters.count_documents({"kind": "inbound"}) == 0
    await wait_sent(fake, "oRetry", 1, timeout_s=60)  # heard and answered this time
    await admin.context.close()
    await agent.context.close()
