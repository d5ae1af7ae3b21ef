"""Getting in: "我的账户" in WeChat answers with a one-time link; WeChat web authorisation."""

from __future__ import annotations

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
    assert await live.redeem(url.rsplit("/", 1)[1]) == Grant("cust-3", "m1")


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
