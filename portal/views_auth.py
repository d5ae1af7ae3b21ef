"""Arriving and leaving: the one-time link from chat, WeChat web authorisation, the home
page with the modules the person may open, sign-out, static files."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from portal.access import clear_cookie, locale, render, session_user, set_cookie, take_flash
from portal.errors import LinkRefused
from portal.i18n import text
from portal.links import Grant
from portal.members import Module, Viewer, owner_viewer
from portal.state import PortalRoute, portal, viewer
from webui.access import csrf_matches
from webui.forms import fields
from webui.sessions import SESSION

log = logging.getLogger(__name__)
OAUTH_STATE = "kefu:portal:oauth:"


async def _start_session(request: web.Request, who: Viewer) -> web.StreamResponse:
    p = portal(request)
    old = request.get(SESSION)
    session = await p.sessions.rotate(old, session_user(who))
    response = web.HTTPSeeOther("/portal/")
    set_cookie(request, response, session)
    await p.audit.record(who, "signin")
    raise response


async def open_link(request: web.Request) -> web.StreamResponse:
    """GET /portal/s/{token}: a link from chat or an invitation, checked but not used.

    Chat apps fetch a URL to draw its preview; a GET that signed in would use the link up
    before the customer tapped it. The page asks to continue, and only that POST uses it.
    """
    p = portal(request)
    try:
        await p.deps.links.check(request.match_info["token"])
    except LinkRefused as exc:
        log.info("portal: sign-in link refused: %s", exc.code)
        return render(request, "signin.html", status=403, refused=exc.message)
    fresh = None
    if SESSION not in request:
        # The continue form needs a CSRF token, so the visitor gets an anonymous session.
        fresh = request[SESSION] = await p.sessions.new()
    response = render(request, "link.html", token=request.match_info["token"])
    if fresh is not None:
        set_cookie(request, response, fresh, max_age=p.sessions.anonymous_ttl_s)
    return response


async def redeem(request: web.Request) -> web.StreamResponse:
    """POST /portal/s/{token}: continue from the link page; the link is used, once."""
    p = portal(request)
    session = request.get(SESSION)
    if session is None or not await csrf_matches(request, session.csrf, fields):
        # Without this, another site could sign a visitor into an account of its choosing.
        log.warning("portal: sign-in link POST refused: CSRF token missing or wrong")
        return render(request, "error.html", status=403, message=text("csrf_refused", locale(request).language))
    try:
        grant = await p.deps.links.redeem(request.match_info["token"])
    except LinkRefused as exc:
        log.info("portal: sign-in link refused: %s", exc.code)
        return render(request, "signin.html", status=403, refused=exc.message)
    who = await _grant_viewer(request, grant)
    if who is None:
        return render(request, "signin.html", status=403, refused="")
    return await _start_session(request, who)


async def _grant_viewer(request: web.Request, grant: Grant) -> Viewer | None:
    p = portal(request)
    if not grant.member:
        return owner_viewer(grant.customer) if await p.deps.prefs.exists(grant.customer) else None
    member = await p.members.active(grant.customer, grant.member)
    return None if member is None else member.viewer()


async def wechat_start(request: web.Request) -> web.StreamResponse:
    """GET /portal/wechat/{account}: off to WeChat's web authorisation (snsapi_base)."""
    p = portal(request)
    oauth = p.deps.wechat_oauth.get(request.match_info["account"])
    if oauth is None:
        raise web.HTTPNotFound()
    state = secrets.token_urlsafe(16)
    await p.deps.redis.set(OAUTH_STATE + state, oauth.account, ex=600)
    redirect = str(request.url.with_path(f"/portal/wechat/{oauth.account}/back").with_query({}))
    raise web.HTTPFound(oauth.authorize_url(redirect, state))


async def wechat_back(request: web.Request) -> web.StreamResponse:
    """GET /portal/wechat/{account}/back?code=&state=: the openid, then that customer's session."""
    p = portal(request)
    oauth = p.deps.wechat_oauth.get(request.match_info["account"])
    state = request.query.get("state", "")
    code = request.query.get("code", "")
    if oauth is None or not state or not code or len(code) > 200:
        raise web.HTTPNotFound()
    expected = await p.deps.redis.getdel(OAUTH_STATE + state[:64])
    if expected is None or (expected.decode() if isinstance(expected, bytes) else str(expected)) != oauth.account:
        return render(request, "signin.html", status=403, refused="")
    try:
        openid = await oauth.openid(code)
    except LinkRefused as exc:
        return render(request, "signin.html", status=403, refused=exc.message)
    customer = await p.deps.prefs.find_by_address("wechat", oauth.account, openid)
    if customer is None:
        return render(request, "signin.html", status=403, refused="")
    return await _start_session(request, owner_viewer(customer))


async def home(request: web.Request) -> web.StreamResponse:
    who = viewer(request)
    modules = [m for m in Module if who.may(m)]
    return render(request, "home.html", modules=modules, flash=await take_flash(request))


async def signout(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    session = request.get(SESSION)
    if session is not None:
        await p.sessions.delete(session)
    response = web.HTTPSeeOther("/portal/signed-out")
    clear_cookie(request, response)
    raise response


async def signed_out(request: web.Request) -> web.StreamResponse:
    return render(request, "signin.html", refused="", signed_out=True)


async def static(request: web.Request) -> web.StreamResponse:
    return portal(request).pages.static(request)


ROUTES = (
    PortalRoute("GET", "/s/{token}", open_link, None, "open_link"),
    PortalRoute("POST", "/s/{token}", redeem, None, "redeem"),
    PortalRoute("GET", "/wechat/{account}", wechat_start, None, "wechat_start"),
    PortalRoute("GET", "/wechat/{account}/back", wechat_back, None, "wechat_back"),
    PortalRoute("GET", "/signed-out", signed_out, None, "signed_out"),
    PortalRoute("GET", "/static/{name}", static, None, "static"),
    PortalRoute("GET", "/", home, "any", "home"),
    PortalRoute("POST", "/signout", signout, "any", "signout"),
)
