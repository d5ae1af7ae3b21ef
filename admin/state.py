"""The console's live parts, reached by every handler through ``request.app[CONSOLE]``,
and the route declaration the access middleware checks."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from admin.audit import AuditLog
from admin.canned import CannedReplies
from admin.deps import ConsoleDeps, ConsoleSettings
from admin.live import LiveHub
from admin.notes import Notes
from admin.ratelimit import SignInLimiter
from admin.rendering import Pages
from admin.roles import Role
from admin.users import USER, User, UserStore
from webui.routes import Handler
from webui.sessions import SessionStore

@dataclass(frozen=True, slots=True)
class ConsoleRoute:
    method: str
    path: str  # relative to /admin
    handler: Handler
    roles: frozenset[Role] | None  # None: open to anyone, signed in or not
    name: str


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


def console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def current_user(request: web.Request) -> User:
    return request[USER]
