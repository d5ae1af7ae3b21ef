"""The portal's live parts, reached by handlers through ``request.app[PORTAL]``, and the
route declaration the access middleware checks."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from portal.audit import PortalAudit
from portal.deps import PortalDeps, PortalSettings
from portal.exports import Exports
from portal.members import Members, Module, Viewer
from portal.rendering import Pages
from webui.routes import Handler
from webui.sessions import SessionStore

VIEWER = web.RequestKey("portal_viewer", Viewer)


@dataclass(frozen=True, slots=True)
class PortalRoute:
    method: str
    path: str  # relative to /portal
    handler: Handler
    # None: anyone (sign-in link, static files); "any": every signed-in person; else the module.
    module: Module | str | None
    name: str


@dataclass
class Portal:
    settings: PortalSettings
    deps: PortalDeps
    pages: Pages
    sessions: SessionStore
    members: Members
    audit: PortalAudit
    exports: Exports
    routes: tuple[PortalRoute, ...]


PORTAL = web.AppKey("portal", Portal)


def portal(request: web.Request) -> Portal:
    return request.app[PORTAL]


def viewer(request: web.Request) -> Viewer:
    return request[VIEWER]
