"""Who is behind a portal request, which modules they may open, and CSRF.

Every route is declared once as a :class:`~portal.state.PortalRoute` naming its module;
the access middleware refuses a route missing from that table (fail closed), shows a
visitor without a session the "ask for a link in chat" page, answers 403 to a colleague
outside their modules and refuses a state change whose CSRF token does not match the
session's. Errors become a page (or the previous page with the reason shown) and one
log line, never a traceback; customer ids stay out of the log.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.errors import KefuError
from portal.i18n import text
from portal.members import Module, Viewer, owner_viewer
from portal.rendering import Locale
from portal.state import VIEWER, portal
from preferences.errors import PreferenceError
from preferences.model import zone
from webui.access import SAFE_METHODS, back_with_message, csrf_matches, declared_route, refusal_middleware
from webui.errors import WebError
from webui.forms import fields
from webui.routes import Handler
from webui.sessions import SESSION, Session, load_session
from webui.sessions import secure_cookies as secure_by
from webui.sessions import take_flash as take_session_flash

log = logging.getLogger(__name__)

LOCALE = web.RequestKey("portal_locale", Locale)


def secure_cookies(request: web.Request) -> bool:
    return secure_by(request, portal(request).settings.secure_cookies)


def set_cookie(request: web.Request, response: web.StreamResponse, session: Session, *, max_age: int | None = None) -> None:
    sessions = portal(request).sessions
    sessions.scheme.set_cookie(response, session, secure=secure_cookies(request), max_age=sessions.ttl_s if max_age is None else max_age)


def clear_cookie(request: web.Request, response: web.StreamResponse) -> None:
    portal(request).sessions.scheme.clear_cookie(response, secure=secure_cookies(request))


def session_user(v: Viewer) -> str:
    return f"c:{v.customer}" if v.owner else f"m:{v.customer}:{v.member}"


def locale(request: web.Request) -> Locale:
    if LOCALE in request:
        return request[LOCALE]
    return Locale(portal(request).pages.guest_language(request), zone(portal(request).settings.time_zone))


def render(request: web.Request, template: str, *, status: int = 200, **context: object) -> web.Response:
    """A page for the request's viewer, with their CSRF token and one-time message."""
    session = request.get(SESSION)
    context.setdefault("csrf", session.csrf if session is not None else "")
    context.setdefault("viewer", request.get(VIEWER))
    return portal(request).pages.render(request, template, locale(request), status=status, **context)


async def flash(request: web.Request, message: str) -> None:
    session = request.get(SESSION)
    if session is not None:
        await portal(request).sessions.set_flash(session, message)


async def take_flash(request: web.Request) -> str:
    return await take_session_flash(request, portal(request).sessions)


async def _refused(request: web.Request, exc: KefuError, status: int) -> web.StreamResponse:
    if request.method == "POST" and VIEWER in request:
        await back_with_message(request, portal(request).sessions, exc.message, root="/portal/")
    return render(request, "error.html", status=status, message=exc.message)


error_middleware = refusal_middleware("portal", log, (WebError, PreferenceError), _refused)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    p = portal(request)
    session = await load_session(request, p.sessions)
    if session is not None:
        who = await _viewer(request, session.user)
        if who is not None:
            request[VIEWER] = who
            prefs = await p.deps.prefs.effective(who.customer)
            request[LOCALE] = Locale(prefs.language, prefs.tz)
    return await handler(request)


async def _viewer(request: web.Request, user: str) -> Viewer | None:
    p = portal(request)
    kind, _, rest = user.partition(":")
    if kind == "c" and rest and await p.deps.prefs.exists(rest):
        return owner_viewer(rest)
    if kind == "m":
        customer, _, member_id = rest.rpartition(":")
        member = await p.members.active(customer, member_id)
        if member is not None:
            await p.members.seen(member)
            return member.viewer()
    return None  # revoked, erased, or signed out elsewhere


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = declared_route(request, portal(request).routes, "portal")
    if route.module is not None:
        who = request.get(VIEWER)
        if who is None:
            return render(request, "signin.html", status=401)
        if isinstance(route.module, Module) and not who.may(route.module):
            log.info("portal: a colleague was refused %s", route.name)
            return render(request, "error.html", status=403, message=_forbidden(request))
        session = request.get(SESSION)
        if request.method not in SAFE_METHODS and not (session is not None and await csrf_matches(request, session.csrf, fields)):
            log.warning("portal: %s %s refused: CSRF token missing or wrong", request.method, route.name)
            return render(request, "error.html", status=403, message=_csrf_refused(request))
    return await handler(request)


def _forbidden(request: web.Request) -> str:
    return text("forbidden", locale(request).language)


def _csrf_refused(request: web.Request) -> str:
    return text("csrf_refused", locale(request).language)
