"""Errors any of our web apps raises: each carries a code, an HTTP status and a message
for the person at the page. The console and the portal derive their own from these."""

from __future__ import annotations

from bot.errors import KefuError


class WebError(KefuError):
    """A web request that cannot be done as asked."""

    code = "web"
    status = 400


class BadInput(WebError):
    code = "bad_input"
    status = 400


class NotFound(WebError):
    """For the portal also the answer for another customer's ids: their existence is not confirmed."""

    code = "not_found"
    status = 404
