"""Fail-closed route declarations, the CSRF token check, refused requests and the way
back after a refused form, for any of our web apps."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.errors import KefuError
from webui.routes import Handler, Route
from webui.sessions import SESSION, SessionStore

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FormReader = Callable[[web.Request], Awaitable[dict[str, str]]]
# How an app answers a request refused on purpose: the error and its HTTP status.
RefusalAnswer = Callable[[web.Request, KefuError, int], Awaitable[web.StreamResponse]]

R = TypeVar("R", bound=Route)


def declared_route(request: web.Request, routes: Sequence[R], app: str) -> R:
    """The matched route's declaration; the router's 404/405, or 403 for a route someone
    added without a declaration (refused rather than served unchecked)."""
    name = request.match_info.route.name
    route = next((r for r in routes if r.name == name), None)
    if route is None:
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception
        log.error("%s: route %s %s has no access entry; refused", app, request.method, request.path)
        raise web.HTTPForbidden(text="no access rule for this route")
    return route


async def csrf_matches(request: web.Request, expected: str, read_form: FormReader) -> bool:
    """Whether the request echoes ``expected`` in the ``X-CSRF-Token`` header or the
    form's ``_csrf`` field (compared in constant time)."""
    presented = request.headers.get("X-CSRF-Token", "")
    if not presented and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        presented = (await read_form(request)).get("_csrf", "")
    return bool(presented) and bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def wants_json(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


async def back_with_message(request: web.Request, sessions: SessionStore, message: str, *, root: str) -> NoReturn:
    """Send a refused form post back to the page it came from (a path under ``root``,
    never another site), with ``message`` shown there once."""
    session = request.get(SESSION)
    if session is not None:
        await sessions.set_flash(session, message)
    referer = request.headers.get("Referer", "")
    at = referer.find(root)
    raise web.HTTPSeeOther(referer[at:] if at >= 0 else root)


def refusal_middleware(
    app: str, app_log: logging.Logger, refusals: tuple[type[KefuError], ...], answer: RefusalAnswer
) -> Middleware:
    """The errors ``app`` raises on purpose become ``answer`` and one line in the app's
    own log, never a traceback. The line names the route, not the path: paths carry
    customer ids."""

    @web.middleware
    async def refused(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except refusals as exc:
            status = int(getattr(exc, "status", 400))
            app_log.info("%s: %s %s refused: %s (%s)", app, request.method, request.match_info.route.name or "?", exc.code, status)
            return await answer(request, exc, status)

    return refused
