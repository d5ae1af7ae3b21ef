"""Server-rendered portal pages: jinja2 with autoescape, assets shipped in the package.

Templates and static files are read once at startup (off the event loop). Words come
from :mod:`portal.i18n` in the customer's language (their preference, or ``?lang=``
before they are known); times are shown in the customer's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from portal.i18n import LANGUAGES, text
from webui.assets import Asset, read_assets, serve
from webui.pages import clock, environment, page_headers, read_templates

# Sign-in links carry a token in the URL: no page tells another site where it came from.
HEADERS = page_headers(referrer="no-referrer")


@dataclass(frozen=True, slots=True)
class Locale:
    """How one request's page speaks: language and time zone."""

    language: str
    tz: ZoneInfo


def load_pages(*, language: str) -> Pages:
    """Read templates and assets (blocking: call it in a thread)."""
    return Pages(read_templates("portal"), read_assets("portal"), language=language)


class Pages:
    def __init__(self, templates: dict[str, str], assets: dict[str, Asset], *, language: str) -> None:
        self.default_language = language
        self.assets = assets
        self.env = environment(templates, app="portal", root="/portal", assets=assets)

    def guest_language(self, request: web.Request) -> str:
        wanted = request.query.get("lang", "")
        return wanted if wanted in LANGUAGES else self.default_language

    def render(self, request: web.Request, template: str, locale: Locale, *, status: int = 200, **context: Any) -> web.Response:
        language = locale.language

        def t(key: str, **values: Any) -> str:
            return text(key, language, **values)

        context.setdefault("viewer", None)
        context.setdefault("csrf", "")
        context.setdefault("flash", "")
        html = self.env.get_template(template).render(t=t, when=clock(locale.tz, "%Y-%m-%d %H:%M"), lang=language, path=request.path, **context)
        return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)

    def static(self, request: web.Request) -> web.Response:
        return serve(request, self.assets)
