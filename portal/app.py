"""The customer portal: an aiohttp sub-application mounted at ``/portal``.

The composition root builds it with :func:`build_portal` and mounts it; the portal never
imports the root. Its clients exist only once the root's stores are open, so the root
hands over a function returning :class:`~portal.deps.PortalDeps`, called at startup.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from portal import (
    views_auth, views_contracts, views_data, views_notify, views_people, views_rules, views_summary, views_tickets,
)
from portal.access import access_middleware, error_middleware, session_middleware
from portal.audit import PortalAudit
from portal.deps import PortalDeps, PortalSettings
from portal.exports import Exports
from portal.members import Members
from portal.rendering import load_pages
from portal.sessions import PORTAL_SESSIONS
from portal.state import PORTAL, Portal, PortalRoute
from webui.routes import routed_app
from webui.sessions import SessionStore

def portal_routes() -> tuple[PortalRoute, ...]:
    """Every portal route with the module it belongs to (the access middleware's table)."""
    return (
        *views_auth.ROUTES, *views_tickets.ROUTES, *views_contracts.ROUTES, *views_notify.ROUTES,
        *views_rules.ROUTES, *views_people.ROUTES, *views_data.ROUTES, *views_summary.ROUTES,
    )


def build_portal(settings: PortalSettings, resolve: Callable[[], PortalDeps]) -> web.Application:
    """The portal sub-application; ``resolve`` is called once, at startup."""
    routes = portal_routes()
    app = routed_app(routes, [error_middleware, session_middleware, access_middleware])

    async def portal_ctx(app: web.Application) -> AsyncIterator[None]:
        deps = resolve()
        pages = await asyncio.to_thread(load_pages, language=settings.language)
        members = Members(deps.db)
        audit = PortalAudit(deps.db)
        exports = Exports(deps.db, ttl_s=settings.export_ttl_s)
        for owner in (members, audit, exports, deps.rules):
            await owner.ensure_indexes()
        sessions = SessionStore(deps.redis, PORTAL_SESSIONS, ttl_s=settings.session_ttl_s)
        app[PORTAL] = Portal(settings, deps, pages, sessions, members, audit, exports, routes)
        yield

    app.cleanup_ctx.append(portal_ctx)
    return app
