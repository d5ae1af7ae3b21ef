"""Signing in and out, the user's own account: password, language, time zone."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from admin.access import secure_cookies
from admin.roles import ALL_ROLES, STAFF, Role
from admin.sessions import CONSOLE_SESSIONS
from admin.state import ConsoleRoute, console, current_user
from admin.users import LANGUAGES
from webui.forms import fields, one
from webui.sessions import SESSION

log = logging.getLogger(__name__)


def _safe_next(target: str) -> str:
    # Only a path inside the console: never an open redirect to another site.
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin/") or target.startswith("//"):
        return "/admin/"
    return target


async def signin_page(request: web.Request) -> web.StreamResponse:
    return await console(request).pages.render(request, "signin.html", next=_safe_next(request.query.get("next", "/admin/")), error="")


async def signin(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    name = data.get("name", "").strip().lower()[:64]
    password = data.get("password", "")[:1024]
    target = _safe_next(data.get("next", "/admin/"))
    address = request.remote or ""
    blocked = await c.limiter.blocked(name, address)
    if blocked is not None:
        minutes = max(1, (blocked.retry_after_s + 59) // 60)
        log.warning("console: sign-in refused, too many attempts (by %s)", blocked.by)
        message = c.pages.text(request, f"signin_blocked_{blocked.by}", minutes=minutes)
        return await c.pages.render(request, "signin.html", status=429, next=target, error=message)
    user = await c.users.authenticate(name, password)
    if user is None:
        await c.limiter.failed(name, address)
        log.info("console: failed sign-in")
        return await c.pages.render(request, "signin.html", status=401, next=target, error=c.pages.text(request, "signin_failed"))
    await c.limiter.succeeded(name, address)
    session = await c.sessions.rotate(request.get(SESSION), user.name)
    log.info("console: %s signed in", user.name)
    response = web.HTTPSeeOther(target)
    CONSOLE_SESSIONS.set_cookie(response, session, secure=secure_cookies(request), max_age=c.settings.session_ttl_s)
    raise response


async def signout(request: web.Request) -> web.StreamResponse:
    c = console(request)
    session = request.get(SESSION)
    if session is not None:
        await c.sessions.delete(session)
    response = web.HTTPSeeOther("/admin/signin")
    CONSOLE_SESSIONS.clear_cookie(response, secure=secure_cookies(request))
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    role = current_user(request).role
    raise web.HTTPSeeOther("/admin/inbox" if role in STAFF else "/admin/trainer" if role is Role.TRAINER else "/admin/marketing/customers")


async def account(request: web.Request) -> web.StreamResponse:
    return await console(request).pages.render(request, "account.html", languages=LANGUAGES)


async def change_password(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = current_user(request)
    data = await fields(request)
    if await c.users.authenticate(user.name, data.get("current", "")[:1024]) is None:
        await c.sessions.set_flash(request[SESSION], c.pages.text(request, "password_wrong"))
        raise web.HTTPSeeOther("/admin/account")
    if data.get("new", "") != data.get("repeat", ""):
        await c.sessions.set_flash(request[SESSION], c.pages.text(request, "password_mismatch"))
        raise web.HTTPSeeOther("/admin/account")
    await c.users.set_password(user.name, data.get("new", ""))
    await c.audit.record(user.name, "user.password", user.name, before="***", after="***")
    # This session gets a fresh id and CSRF token; every other one of the user's ends.
    session = await c.sessions.rotate(request.get(SESSION), user.name)
    await c.sessions.end_all(user.name, keep=session)
    session = await c.sessions.set_flash(session, c.pages.text(request, "password_changed"))
    response = web.HTTPSeeOther("/admin/account")
    CONSOLE_SESSIONS.set_cookie(response, session, secure=secure_cookies(request), max_age=c.settings.session_ttl_s)
    raise response


async def preferences(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = current_user(request)
    data = await fields(request)
    language = one(data, "language", max_len=8)
    before, after = await c.users.update(user.name, language=language, time_zone=one(data, "time_zone", max_len=64))
    await c.audit.record(user.name, "user.preferences", user.name, before=before.public(), after=after.public())
    raise web.HTTPSeeOther(_safe_next(data.get("next", "/admin/account")))


async def static(request: web.Request) -> web.StreamResponse:
    return console(request).pages.static(request)


ROUTES = (
    ConsoleRoute("GET", "/signin", signin_page, None, "signin_page"),
    ConsoleRoute("POST", "/signin", signin, None, "signin"),
    ConsoleRoute("GET", "/static/{name}", static, None, "static"),
    ConsoleRoute("POST", "/signout", signout, ALL_ROLES, "signout"),
    ConsoleRoute("GET", "/", home, ALL_ROLES, "home"),
    ConsoleRoute("GET", "/account", account, ALL_ROLES, "account"),
    ConsoleRoute("POST", "/account/password", change_password, ALL_ROLES, "password"),
    ConsoleRoute("POST", "/account/preferences", preferences, ALL_ROLES, "preferences"),
)
