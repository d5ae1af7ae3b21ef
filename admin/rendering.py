"""Server-rendered pages: jinja2 with autoescape everywhere, and the console's assets.

Templates and static files are read into memory once at startup (off the event loop);
a page render touches no disk. Times are shown in the user's own time zone, words in
the user's own language (:mod:`admin.i18n`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from admin.i18n import LANGUAGES
from admin.i18n import text as i18n_text
from admin.reasons import reason_in
from admin.sessions import SESSION, SessionStore
from admin.users import USER
from admin.zones import zone
from webui.assets import Asset, read_assets, read_tree, serve

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def load_pages(sessions: SessionStore, *, language: str, time_zone: str) -> Pages:
    """Read templates and assets (blocking: call it in a thread)."""
    templates = {name: body.decode("utf-8") for name, body in read_tree("admin", "templates", "*.html").items()}
    return Pages(templates, read_assets("admin"), sessions, language=language, time_zone=time_zone)


class Pages:
    """Renders the console's pages for the request's user (language, time zone, CSRF
    token, the session's one-time message); ``language`` and ``time_zone`` serve those
    who are not signed in."""

    def __init__(
        self, templates: dict[str, str], assets: dict[str, Asset], sessions: SessionStore, *, language: str, time_zone: str
    ) -> None:
        self.sessions = sessions
        self.default_language = language
        self.default_time_zone = time_zone
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(templates),
            autoescape=True,  # every template, whatever its name: customer text is never markup
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.assets = assets
        self.env.globals["asset"] = self.asset_url
        # Readable JSON (Chinese as itself) as plain text, escaped by autoescape like any
        # other value; jinja's tojson is meant for <script> and writes \uXXXX.
        self.env.filters["reason"] = reason_in  # {{ state.handoff_reason|reason(lang) }}
        self.env.filters["readable"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, default=str)

    def asset_url(self, name: str) -> str:
        return f"/admin/static/{name}?v={self.assets[name].etag}"

    def language(self, request: web.Request) -> str:
        user = request.get(USER)
        if user is not None:
            return str(user.language)
        wanted = request.query.get("lang", "")
        return wanted if wanted in LANGUAGES else self.default_language

    def text(self, request: web.Request, key: str, **values: Any) -> str:
        return i18n_text(key, self.language(request), **values)

    async def render(self, request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
        user = request.get(USER)
        session = request.get(SESSION)
        language = self.language(request)
        tz = await zone(user.time_zone if user is not None else self.default_time_zone)
        flash = ""
        if session is not None and session.flash:
            flash = session.flash
            request[SESSION] = replace(session, flash="")
            await self.sessions.save(request[SESSION])

        def t(key: str, **values: Any) -> str:
            return i18n_text(key, language, **values)

        def when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
            return datetime.fromtimestamp(float(ts), tz).strftime(fmt) if ts else ""

        html = self.env.get_template(template).render(
            t=t,
            when=when,
            lang=language,
            user=user,
            csrf=session.csrf if session is not None else "",
            flash=flash,
            path=request.path,
            **context,
        )
        return web.Response(
            text=html,
            status=status,
            content_type="text/html",
            headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"},
        )

    def error(self, request: web.Request, status: int, message: str) -> web.Response:
        if request.headers.get("Accept", "").startswith("application/json") or request.path.startswith("/admin/events"):
            return web.json_response({"error": {"message": message}}, status=status)
        language = self.language(request)
        html = self.env.get_template("error.html").render(
            t=lambda key, **v: i18n_text(key, language, **v), lang=language, message=message, status=status,
            user=None, csrf="", flash="", path=request.path,
        )
        return web.Response(text=html, status=status, content_type="text/html", headers={"Content-Security-Policy": CSP})

    def static(self, request: web.Request) -> web.Response:
        return serve(request, self.assets)
