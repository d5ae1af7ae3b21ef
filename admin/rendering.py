"""Server-rendered pages: jinja2 with autoescape everywhere, and the console's assets.

Templates and static files are read into memory once at startup (off the event loop);
a page render touches no disk. Times are shown in the user's own time zone, words in
the user's own language (:mod:`admin.i18n`).
"""

from __future__ import annotations

import json
import time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from admin.i18n import LANGUAGES
from admin.i18n import text as i18n_text
from admin.reasons import reason_in
from admin.users import USER
from admin.zones import zone
from webui.assets import Asset, read_assets, serve
from webui.pages import clock, environment, page_headers, read_templates
from webui.sessions import SESSION, SessionStore, take_flash

# Voice notes play in the page (media-src); the referrer stays within the console.
HEADERS = page_headers(referrer="same-origin", media=True)


def load_pages(sessions: SessionStore, *, language: str, time_zone: str) -> Pages:
    """Read templates and assets (blocking: call it in a thread)."""
    return Pages(read_templates("admin"), read_assets("admin"), sessions, language=language, time_zone=time_zone)


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
        self.env = environment(templates, app="console", root="/admin", assets=assets)
        self.assets = assets
        # Readable JSON (Chinese as itself) as plain text, escaped by autoescape like any
        # other value; jinja's tojson is meant for <script> and writes \uXXXX.
        self.env.filters["reason"] = reason_in  # {{ w.reason|reason(w.reason_code, w.reason_params, lang) }}
        self.env.filters["readable"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent, default=str)

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
        flash = await take_flash(request, self.sessions)

        def t(key: str, **values: Any) -> str:
            return i18n_text(key, language, **values)

        html = self.env.get_template(template).render(
            t=t,
            when=clock(tz, "%Y-%m-%d %H:%M:%S"),
            lang=language,
            user=user,
            csrf=session.csrf if session is not None else "",
            flash=flash,
            path=request.path,
            rendered_at=time.time(),  # live pages ask their stream for what came after it
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)

    def fragment(self, template: str, language: str, tz: ZoneInfo, **context: Any) -> str:
        """A part of a page for a live update, in ``language`` with times in ``tz``."""

        def t(key: str, **values: Any) -> str:
            return i18n_text(key, language, **values)

        return self.env.get_template(template).render(t=t, when=clock(tz, "%Y-%m-%d %H:%M:%S"), lang=language, **context)

    def error(self, request: web.Request, status: int, message: str) -> web.Response:
        if request.headers.get("Accept", "").startswith("application/json") or request.path.startswith("/admin/events"):
            return web.json_response({"error": {"message": message}}, status=status)
        language = self.language(request)
        html = self.env.get_template("error.html").render(
            t=lambda key, **v: i18n_text(key, language, **v), lang=language, message=message, status=status,
            user=None, csrf="", flash="", path=request.path,
        )
        return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)

    def static(self, request: web.Request) -> web.Response:
        return serve(request, self.assets)
