"""Who may open which console route, the session around each request, and CSRF.

Every route is declared once as a :class:`ConsoleRoute` with the roles allowed on it;
the access middleware refuses a route missing from that table (fail closed), sends an
anonymous visitor to the sign-in page (or answers 401 to a non-page request), answers
403 to a signed-in user without the role, and refuses any state-changing request whose
CSRF token does not match the session's. Console errors become a page or a JSON body
and one log line, never a traceback.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from admin.state import console
from admin.users import USER
from bot.conversation.handoff import HandoffError
from bot.errors import KefuError
from webui.access import SAFE_METHODS, back_with_message, csrf_matches, declared_route, refusal_middleware, wants_json
from webui.errors import WebError
from webui.forms import fields
from webui.routes import Handler
from webui.sessions import SESSION, Session, load_session
from webui.sessions import secure_cookies as secure_by

log = logging.getLogger(__name__)



def wants_page(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return request.method == "GET" and "application/json" not in accept and "text/event-stream" not in accept


def secure_cookies(request: web.Request) -> bool:
    return secure_by(request, console(request).settings.secure_cookies)


async def _refused(request: web.Request, exc: KefuError, status: int) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=status)
    if USER in request and request.method == "POST" and SESSION in request:
        await back_with_message(request, console(request).sessions, exc.message, root="/admin/")
    return console(request).pages.error(request, status, exc.message)


error_middleware = refusal_middleware("console", log, (WebError, HandoffError), _refused)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    c = console(request)
    session = await load_session(request, c.sessions)
    if session is not None:
        if session.user:
            user = await c.users.get(session.user)
            if user is not None and not user.disabled:
                request[USER] = user
    return await handler(request)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    c = console(request)
    route = declared_route(request, c.routes, "console")
    if route.roles is not None:
        user = request.get(USER)
        if user is None:
            if wants_page(request):
                raise web.HTTPSeeOther("/admin/signin?next=" + quote(request.path_qs, safe=""))
            raise web.HTTPUnauthorized(text="sign in first")
        if user.role not in route.roles:
            log.info("console: %s (%s) refused %s %s", user.name, user.role.value, request.method, request.path)
            return c.pages.error(request, 403, c.pages.text(request, "forbidden"))
    if request.method not in SAFE_METHODS and not await _csrf_ok(request):
        log.warning("console: %s %s refused: CSRF token missing or wrong", request.method, request.path)
        return c.pages.error(request, 403, c.pages.text(request, "csrf_refused"))
    fresh: Session | None = None
    if SESSION not in request and route.roles is None and request.method == "GET" and route.name != "static":
        # Anonymous pages (sign-in) need a session of their own for the form's CSRF token.
        fresh = await c.sessions.new()
        request[SESSION] = fresh
    response = await handler(request)
    if fresh is not None:
        c.sessions.scheme.set_cookie(response, fresh, secure=secure_cookies(request), max_age=c.sessions.anonymous_ttl_s)
    return response


async def _csrf_ok(request: web.Request) -> bool:
    session = request.get(SESSION)
    return session is not None and await csrf_matches(request, session.csrf, fields)
