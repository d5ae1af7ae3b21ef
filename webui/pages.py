"""What every server-rendered page of ours shares: templates read once at startup, jinja2
with autoescape everywhere, the page skeleton (``webui/page.html``: language, CSRF meta,
the app's stylesheet and script), times in the reader's zone and the security headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

import jinja2

from webui.assets import Asset, read_tree


def read_templates(package: str) -> dict[str, str]:
    """``package``'s templates and the shared skeleton under ``webui/`` (blocking: call it
    in a thread). A page extends ``base.html``, which extends ``webui/page.html``."""
    shared = read_tree("webui", "templates", "*.html")
    own = read_tree(package, "templates", "*.html")
    return {name: body.decode("utf-8") for name, body in {**shared, **own}.items()}


def environment(templates: dict[str, str], *, app: str, root: str, assets: dict[str, Asset]) -> jinja2.Environment:
    """The jinja2 environment of one web app: ``app`` names its stylesheet, script and
    title word; ``root`` is where it is mounted (its assets are under ``root/static``)."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader(templates),
        autoescape=True,  # every template, whatever its name: customer text is never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The ETag in the URL lets browsers keep an asset for a day and still see a new one.
    env.globals["asset"] = lambda name: f"{root}/static/{name}?v={assets[name].etag}"
    env.globals["app"] = app
    return env


def clock(tz: tzinfo, default_format: str) -> Callable[..., str]:
    """``when(ts, fmt)`` for templates: a Unix time in the reader's zone; nothing for none."""

    def when(ts: float | None, fmt: str = default_format) -> str:
        return datetime.fromtimestamp(float(ts), tz).strftime(fmt) if ts else ""

    return when


def page_headers(*, referrer: str, media: bool = False) -> dict[str, str]:
    """A page's security headers: our own scripts, styles and (with ``media``) audio only,
    no framing, never cached (pages carry a CSRF token and customer data)."""
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + ("media-src 'self'; " if media else "")
        + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": referrer, "Cache-Control": "no-store"}
