"""Getting in: "我的账户" in WeChat answers with a one-time link; WeChat web authorisation."""

from __future__ import annotations

import logging
import time

import pytest
from redis.asyncio import Redis

from portal.errors import LinkRefused
from portal.links import Grant, SignInLinks
from tests.portal.conftest import PortalRig


async def test_my_account_in_wechat_replies_with_a_link_that_signs_in_once(rig: PortalRig) -> None:
    reply, link = await rig.ask_link("o-portal-li")
    assert "一次" in reply and "15" in reply  # says it works once, within 15 minutes
    who = rig.visitor()
    resp = await who.open_link(link)
    assert resp.status == 303 and resp.headers["Location"] == "/portal/"
    cookie = resp.cookies["kefu_portal"]
    assert cookie["httponly"] and cookie["path"] == "/portal" and cookie["samesite"] == "Lax"
    home = await who.page("/portal/")
    for module in ("我的报修", "我的合同", "通知方式", "我的规则", "我的数据", "授权同事"):
        assert module in home
    # The same link a second time, in another browser: refused, nobody signed in.
    other = rig.visitor()
    again = await other.get(link)
    assert again.status == 403 and "已失效" in await again.text()
    assert (await other.get("/portal/tickets")).status == 401


async def test_a_link_preview_fetch_does_not_use_the_link(rig: PortalRig, caplog: pytest.LogCaptureFixture) -> None:
    """Chat apps GET a URL to draw its preview; only the customer's tap on "continue" uses it."""
    _, link = await rig.ask_link("o-portal-preview")
    preview_bot = rig.visitor()
    for _ in range(3):
        fetched = await preview_bot.get(link)
        assert fetched.status == 200 and "进入我的账户" in await fetched.text()
        assert fetched.headers["Cache-Control"] == "no-store" and fetched.headers["Referrer-Policy"] == "no-referrer"
    assert (await preview_bot.get("/portal/tickets")).status == 401  # looking signed nobody in
    # A POST without the page's CSRF token (another site's form, or a bot): refused, link kept.
    caplog.set_level(logging.INFO, logger="portal")
    forged = await rig.visitor().post(link, csrf=False)
    assert forged.status == 403 and "portal: sign-in link POST refused: CSRF token missing or wrong" in caplog.messages
    assert (await preview_bot.post(link, {"_csrf": "guessed"}, csrf=False)).status == 403
    # The customer, later, in their own browser: signed in; the link is used from then on.
    who = rig.visitor()
    resp = await who.open_link(link)
    assert resp.status == 303 and resp.headers["Location"] == "/portal/"
    assert "我的报修" in await who.page("/portal/")
    used = await preview_bot.get(link)
    assert used.status == 403 and "已失效" in await used.text()


async def test_english_keyword_and_an_english_customer(rig: PortalRig) -> None:
    reply, link = await rig.ask_link("o-portal-en", "my account")
    assert link in reply
    who = rig.visitor()
    assert (await who.open_link(link)).status == 303
    customer = await rig.deps.prefs.find_by_address("wechat", "demo", "o-portal-en")
    assert customer is not None
    await rig.deps.prefs.change(customer, {"language": "en"}, actor=customer, via="chat")
    assert "My tickets" in await who.page("/portal/")


async def test_links_expire_and_forgeries_fail(redis: Redis) -> None:
    now = [1_000_000.0]
    links = SignInLinks(redis, public_url="", ttl_s=60, clock=lambda: now[0])
    url = await links.issue(Grant("cust-1"))
    token = url.rsplit("/", 1)[1]
    nonce, expires, mac = token.split(".")
    for bad in ("junk", "a.b.c.d", f"other{nonce}.{expires}.{mac}", f"{nonce}.{int(expires) + 10}.{mac}"):
        with pytest.raises(LinkRefused):
            await links.redeem(bad)
    fresh = (await links.issue(Grant("cust-2"))).rsplit("/", 1)[1]
    now[0] += 61
    with pytest.raises(LinkRefused, match="expired"):
        await links.redeem(fresh)
    now[0] = time.time()
    live = SignInLinks(redis, public_url="https://kefu.example.cn", ttl_s=60)
    url = await live.issue(Grant("cust-3", "m1"))
    assert url.startswith("https://kefu.example.cn/portal/s/") and "cust-3" not in url
    token = url.rsplit("/", 1)[1]
    for bad in ("junk", f"x{token}"):
        with pytest.raises(LinkRefused):
            await live.check(bad)
    assert await live.check(token) == await live.check(token) == Grant("cust-3", "m1")  # checking leaves it usable
    assert await live.redeem(token) == Grant("cust-3", "m1")
    with pytest.raises(LinkRefused, match="used already"):
        await live.check(token)


async def test_wechat_web_authorisation_signs_in_the_openid_behind_the_phone(rig: PortalRig) -> None:
    await rig.ask_link("o-portal-oauth")  # the customer is known from chat
    rig.harness.fake.web_user = "o-portal-oauth"
    who = rig.visitor()
    resp = await who.http.get(rig.base + "/portal/wechat/demo")  # follows WeChat's redirects
    assert resp.status == 200 and str(resp.url) == rig.base + "/portal/"
    assert "我的报修" in await resp.text()
    # An openid WeChat vouches for but Kefu has never seen gets no account.
    rig.harness.fake.web_user = "o-stranger"
    stranger = rig.visitor()
    resp = await stranger.http.get(rig.base + "/portal/wechat/demo")
    assert resp.status == 403
    # A code replayed, or a state Kefu never issued: refused.
    replay = await stranger.http.get(rig.base + "/portal/wechat/demo/back", params={"code": "x", "state": "never-issued"})
    assert replay.status == 403
