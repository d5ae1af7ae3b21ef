"""The gateway's JSON API: one aiohttp sub-application mounted at ``/api``.

Cross-cutting request work is middleware, written once here (the slack-bolt and aiohttp
way): the API key and its scopes are checked before a handler runs, and errors become
one JSON shape, ``{"error": {"code", "message", "field"?}}``.

How a package plugs in (conversations, preferences, skills, the console's JSON
endpoints): it exports ``routes() -> list[web.RouteDef]`` with paths relative to
``/api``, each handler marked ``@requires("<scope>")`` (scopes are listed in
:data:`bot.apikeys.SCOPES`) or ``@public`` when it authenticates itself (a signed
webhook, a signed download link). Handlers read their package's services with
``request.config_dict[<its AppKey>]``, which the composition root fills at startup;
bodies are read with :func:`json_body`; a :class:`~bot.errors.KefuError` carrying a
``status`` becomes that 4xx. The root passes every package's routes to
:func:`build_api` and mounts the result; no handler checks keys or maps errors itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiohttp import web

from bot.apikeys import ApiKeys
from bot.errors import KefuError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SCOPE = "api_scope"
_PUBLIC = ""


class BadRequest(KefuError):
    """The request body is not what the endpoint takes."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str = "") -> None:
        super().__init__(message, code=code)
        self.field = field


def requires(scope: str) -> Callable[[Handler], Handler]:
    """Mark a handler as needing an API key that carries ``scope``."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _SCOPE, scope)
        return handler

    return mark


def public(handler: Handler) -> Handler:
    """Mark a handler that authenticates its caller itself (or needs no caller at all)."""
    setattr(handler, _SCOPE, _PUBLIC)
    return handler


def scope_of(handler: Any) -> str | None:
    """The scope a handler requires, ``""`` if public, ``None`` if it declared nothing."""
    found = getattr(handler, _SCOPE, None)
    return found if isinstance(found, str) else None


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def dumps(obj: Any) -> str:
    """JSON as the API writes it: Chinese kept readable, dates and ids as strings."""
    return json.dumps(obj, ensure_ascii=False, default=str)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; :class:`BadRequest` if it is not one."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body: not valid JSON", code="bad_json", field="body") from None
    if not isinstance(data, dict):
        raise BadRequest("body: expected a JSON object", code="bad_json", field="body")
    return data


def presented_key(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("X-API-Key", "")


class Unauthorized(KefuError):
    """Missing or unknown API key."""

    code = "unauthorized"
    status = 401


class Forbidden(KefuError):
    code = "forbidden"
    status = 403


class IssuedKeys(Protocol):
    """Keys issued at run time (the console's API keys page), looked up on each request
    so that a revoked key stops working at once in every process."""

    async def scopes_of(self, presented: str) -> frozenset[str] | None: ...


API_KEYS = web.AppKey("api_keys", ApiKeys)
# Set by the composition root at startup, once the database is open.
ISSUED_KEYS = web.AppKey("issued_api_keys", IssuedKeys)


async def authorize(request: web.Request, scope: str) -> None:
    """Raise :class:`Unauthorized` or :class:`Forbidden` unless the request's key carries
    ``scope``; for handlers whose need of a key depends on the request."""
    presented = presented_key(request)
    scopes = request.config_dict[API_KEYS].scopes_of(presented) if presented else None
    issued = request.config_dict.get(ISSUED_KEYS)
    if scopes is None and presented and issued is not None:
        scopes = await issued.scopes_of(presented)
    if scopes is None:
        log.warning("api: rejected %s %s without a valid key from %s", request.method, request.path, request.remote)
        raise Unauthorized("missing or unknown API key")
    if scope not in scopes:
        raise Forbidden(f"this key lacks scope {scope!r}")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors raised on purpose become their JSON answer; aiohttp's own pass through."""
    try:
        return await handler(request)
    except KefuError as exc:
        status = getattr(exc, "status", None)
        if not isinstance(status, int):
            raise
        field = getattr(exc, "field", "")
        return json_error(status, exc.code, exc.message, **({"field": field} if field else {}))
    except TimeoutError as exc:  # a conversation lock another request holds
        return json_error(409, "busy", str(exc))


@web.middleware
async def key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Checks the scope each route's handler declared; a route that declared none is refused."""
    if request.match_info.http_exception is not None:  # no such route: aiohttp's 404/405
        return await handler(request)
    scope = scope_of(request.match_info.handler)
    if scope is None:
        log.error("api: %s %s declares no scope; refused", request.method, request.path)
        raise Forbidden("this endpoint declares no scope")
    if scope:
        await authorize(request, scope)
    return await handler(request)


def build_api(keys: ApiKeys, route_lists: Iterable[Iterable[web.RouteDef]], *, client_max_size: int) -> web.Application:
    """The ``/api`` sub-application: every package's routes behind the shared middleware."""
    api = web.Application(middlewares=[error_middleware, key_middleware], client_max_size=client_max_size)
    api[API_KEYS] = keys
    for routes in route_lists:
        api.add_routes(routes)
    return api
