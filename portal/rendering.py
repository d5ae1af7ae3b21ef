"""Server-rendered portal pages: jinja2 with autoescape, assets shipped in the package.

Templates and static files are read once at startup (off the event loop). Words come
from :mod:`portal.i18n` in the customer's language (their preference, or ``?lang=``
before they are known); times are shown in the customer's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from portal.i18n import LANGUAGES, text
from webui.assets import Asset, read_assets, read_tree, serve

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Locale:
    """How one request's page speaks: language and time zone."""

    language: str
    tz: ZoneInfo


def load_pages(*, language: str) -> Pages:
    """Read templates and assets (blocking: call it in a thread)."""
    templates = {name: body.decode("utf-8") for name, body in read_tree("portal", "templates").items()}
    return Pages(templates, read_assets("portal"), language=language)


class Pages:
    def __init__(self, templates: dict[str, str], assets: dict[str, Asset], *, language: str) -> None:
        self.default_language = language
        self.assets = assets
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(templates), autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )
        self.env.globals["asset"] = lambda name: f"/portal/static/{name}?v={self.assets[name].etag}"

    def guest_language(self, request: web.Request) -> str:
        wanted = request.query.get("lang", "")
        return wanted if wanted in LANGUAGES else self.default_language

    def render(self, request: web.Request, template: str, locale: Locale, *, status: int = 200, **context: Any) -> web.Response:
        language = locale.language

        def t(key: str, **values: Any) -> str:
            return text(key, language, **values)

        def when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
            return datetime.fromtimestamp(float(ts), locale.tz).strftime(fmt) if ts else ""

        context.setdefault("viewer", None)
        context.setdefault("csrf", "")
        context.setdefault("flash", "")
        html = self.env.get_template(template).render(t=t, when=when, lang=language, path=request.path, **context)
        return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)

    def static(self, request: web.Request) -> web.Response:
        return serve(request, self.assets)
