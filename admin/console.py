"""The console application: an aiohttp sub-application mounted at ``/admin``.

The composition root builds it with :func:`build_console` and mounts it; the console
never imports the root. Its clients (Redis, MongoDB, the hand-off, the stores, the
outbox, the channel lookup) exist only once the root's stores are open, so the root
hands over a function that assembles :class:`ConsoleDeps` and the console calls it in
its own startup, which aiohttp runs after the parent application's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from admin.access import ConsoleRoute, access_middleware, error_middleware, session_middleware
from admin.audit import AuditLog
from admin.canned import CannedReplies
from admin.keys import ApiKeyStore
from admin.live import LiveHub
from admin.notes import Notes
from admin.ratelimit import Limits, SignInLimiter
from admin.rendering import Pages, load_pages
from admin.sessions import SessionStore
from admin.users import UserStore
from admin import views_account, views_admin, views_inbox, views_outbox
from bot.conversation.handoff import Handoff
from bot.conversation.state import StateStore
from bot.errors import ConfigError
from bot.outbox import Outbox
from bot.store import MessageStore
from channels.base import Channel

log = logging.getLogger(__name__)

ChannelLookup = Callable[[str, str], Channel | None]
AudioConverter = Callable[[bytes, str], bytes]


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The ``console`` section of kefu.yml."""

    session_ttl_s: int = 12 * 3600
    secure_cookies: bool | None = None  # None: Secure whenever the request came over https
    signin: Limits = field(default_factory=Limits)
    language: str = "zh"  # for the sign-in page; users choose their own afterwards
    time_zone: str = "Asia/Shanghai"
    public_url: str = ""  # base of the webhook URLs shown on the channels page

    @classmethod
    def from_section(cls, section: Mapping[str, Any], *, public_url: str) -> ConsoleSettings:
        known = {"session_ttl_s", "secure_cookies", "signin_per_user", "signin_per_address", "signin_window_s",
                 "language", "time_zone", "public_url"}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"console: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
        try:
            d = cls()
            limits = Limits(
                per_user=int(section.get("signin_per_user", d.signin.per_user)),
                per_address=int(section.get("signin_per_address", d.signin.per_address)),
                window_s=int(section.get("signin_window_s", d.signin.window_s)),
            )
            secure = section.get("secure_cookies")
            language = str(section.get("language", d.language))
            if language not in ("zh", "en"):
                raise ValueError("language must be zh or en")
            return cls(
                session_ttl_s=int(section.get("session_ttl_s", d.session_ttl_s)),
                secure_cookies=None if secure is None else bool(secure),
                signin=limits,
                language=language,
                time_zone=_known_zone(str(section.get("time_zone", d.time_zone))),
                public_url=str(section.get("public_url") or public_url).rstrip("/"),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"console: {exc}") from exc


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)  # read at configuration time, before the event loop serves anyone
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    """The gateway's parts the console works with, built by the composition root."""

    redis: Redis
    db: AsyncDatabase[dict[str, Any]]
    store: MessageStore
    states: StateStore
    handoff: Handoff
    outbox: Outbox
    channels: ChannelLookup
    # Configured accounts per channel name, as in kefu.yml (shown with secrets hidden).
    channel_settings: Mapping[str, tuple[Mapping[str, Any], ...]]
    api_scopes: tuple[str, ...] = ()
    api_keys: ApiKeyStore | None = None
    # Voice-note bytes and their format -> WAV a browser plays; None: served as stored.
    audio_to_browser: AudioConverter | None = None


@dataclass
class Console:
    """Everything a console request handler reaches through ``request.app[CONSOLE]``."""

    settings: ConsoleSettings
    deps: ConsoleDeps
    pages: Pages
    users: UserStore
    sessions: SessionStore
    limiter: SignInLimiter
    audit: AuditLog
    notes: Notes
    canned: CannedReplies
    hub: LiveHub
    routes: tuple[ConsoleRoute, ...]


CONSOLE = web.AppKey("console", Console)


def console_routes() -> tuple[ConsoleRoute, ...]:
    """Every console route with the roles allowed on it (the access middleware's table)."""
    return (
        *views_account.ROUTES,
        *views_inbox.ROUTES,
        *views_outbox.ROUTES,
        *views_admin.ROUTES,
    )


def build_console(settings: ConsoleSettings, resolve: Callable[[], ConsoleDeps]) -> web.Application:
    """The console sub-application; ``resolve`` is called once, at startup."""
    routes = console_routes()
    app = web.Application(middlewares=[error_middleware, session_middleware, access_middleware])
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.name)

    async def console_ctx(app: web.Application) -> AsyncIterator[None]:
        deps = resolve()
        pages = await asyncio.to_thread(load_pages)
        users = UserStore(deps.db)
        audit = AuditLog(deps.db)
        notes = Notes(deps.db)
        canned = CannedReplies(deps.db)
        await users.ensure_indexes()
        await audit.ensure_indexes()
        await notes.ensure_indexes()
        await canned.ensure_indexes()
        hub = LiveHub(deps.redis, deps.store, deps.states)
        app[CONSOLE] = Console(
            settings=settings,
            deps=deps,
            pages=pages,
            users=users,
            sessions=SessionStore(deps.redis, ttl_s=settings.session_ttl_s),
            limiter=SignInLimiter(deps.redis, settings.signin),
            audit=audit,
            notes=notes,
            canned=canned,
            hub=hub,
            routes=routes,
        )
        task = asyncio.create_task(hub.run(), name="console-live")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def end_live_pages(app: web.Application) -> None:
        # On shutdown, before the root closes Redis: open event streams end now instead
        # of holding the server's graceful shutdown for their whole timeout.
        await app[CONSOLE].hub.close()

    app.cleanup_ctx.append(console_ctx)
    app.on_shutdown.append(end_live_pages)
    return app
