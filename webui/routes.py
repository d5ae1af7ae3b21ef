"""A web app's route table: each route declared once, with what its app checks on it,
and the aiohttp application built from that table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Route(Protocol):
    """What a web app's route declaration (the console's, the portal's) has in common;
    each adds who may open the route."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def handler(self) -> Handler: ...
    @property
    def name(self) -> str: ...


def routed_app(routes: Iterable[Route], middlewares: Sequence[Middleware]) -> web.Application:
    """An application serving exactly ``routes``, each under its declared name (the
    access middleware finds the declaration by that name)."""
    app = web.Application(middlewares=middlewares)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)
    return app
