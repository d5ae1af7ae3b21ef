"""The portal's errors: each carries a code, an HTTP status and a message for the customer."""

from __future__ import annotations

from bot.errors import KefuError


class PortalError(KefuError):
    """A portal request that cannot be done as asked."""

    code = "portal"
    status = 400


class LinkRefused(PortalError):
    code = "link_refused"
    status = 403


class NotFound(PortalError):
    """Also the answer for another customer's ids: their existence is not confirmed."""

    code = "not_found"
    status = 404


class BadInput(PortalError):
    code = "bad_input"
    status = 400
