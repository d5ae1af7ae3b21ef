"""The console application: an aiohttp sub-application mounted at ``/admin``.

The composition root builds it with :func:`build_console` and mounts it; the console
never imports the root. Its clients (Redis, MongoDB, the hand-off, the stores, the
outbox, the channel lookup) exist only once the root's stores are open, so the root
hands over a function that assembles :class:`~admin.deps.ConsoleDeps` and the console
calls it in its own startup, which aiohttp runs after the parent application's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from admin import views_account, views_admin, views_inbox, views_outbox, views_trainer, views_trainer_model
from admin.access import access_middleware, error_middleware, session_middleware
from admin.audit import AuditLog
from admin.canned import CannedReplies
from admin.deps import ConsoleDeps, ConsoleSettings
from admin.live import LiveHub
from admin.live_activity import watch_activity
from admin.live_boards import watch_boards
from admin.live_trainer import watch_trainer
from admin.notes import Notes
from admin.ratelimit import SignInLimiter
from admin.rendering import load_pages
from admin.sessions import CONSOLE_SESSIONS
from admin.state import CONSOLE, Console, ConsoleRoute
from admin.users import UserStore
from admin.views_marketing import MARKETING_ROUTES
from webui.routes import routed_app
from webui.sessions import SessionStore

log = logging.getLogger(__name__)


def console_routes() -> tuple[ConsoleRoute, ...]:
    """Every console route with the roles allowed on it (the access middleware's table)."""
    return (
        *views_account.ROUTES,
        *views_inbox.ROUTES,
        *views_outbox.ROUTES,
        *views_admin.ROUTES,
        *MARKETING_ROUTES,
        *views_trainer.ROUTES,
        *views_trainer_model.ROUTES,
    )


def build_console(settings: ConsoleSettings, resolve: Callable[[], ConsoleDeps]) -> web.Application:
    """The console sub-application; ``resolve`` is called once, at startup."""
    routes = console_routes()
    app = routed_app(routes, [error_middleware, session_middleware, access_middleware])

    async def console_ctx(app: web.Application) -> AsyncIterator[None]:
        deps = resolve()
        sessions = SessionStore(deps.redis, CONSOLE_SESSIONS, ttl_s=settings.session_ttl_s)
        pages = await asyncio.to_thread(load_pages, sessions, language=settings.language, time_zone=settings.time_zone)
        users = UserStore(deps.db)
        audit = AuditLog(deps.db)
        notes = Notes(deps.db)
        canned = CannedReplies(deps.db)
        await users.ensure_indexes()
        await audit.ensure_indexes()
        await notes.ensure_indexes()
        await canned.ensure_indexes()
        hub = LiveHub(deps.redis, deps.store, deps.states, idle_s=settings.live_idle_s)
        watch_activity(hub, deps.preferences.activity if deps.preferences is not None else None)
        watch_boards(hub, pages, deps.skills.tickets if deps.skills is not None else None,
                     deps.preferences.rights if deps.preferences is not None else None,
                     deps.skills.reviews if deps.skills is not None else None,
                     deps.preferences, deps.skills.renewals if deps.skills is not None else None)
        watch_trainer(hub, deps.knowledge)
        app[CONSOLE] = Console(
            settings=settings,
            deps=deps,
            pages=pages,
            users=users,
            sessions=sessions,
            limiter=SignInLimiter(deps.redis, settings.signin),
            audit=audit,
            notes=notes,
            canned=canned,
            hub=hub,
            routes=routes,
        )
        hub.start()
        yield
        await hub.stop()

    async def end_live_pages(app: web.Application) -> None:
        # On shutdown, before the root closes Redis: open event streams end now instead
        # of holding the server's graceful shutdown for their whole timeout.
        await app[CONSOLE].hub.close()

    app.cleanup_ctx.append(console_ctx)
    app.on_shutdown.append(end_live_pages)
    return app
