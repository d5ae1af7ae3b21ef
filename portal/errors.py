"""The portal's own errors; the ones every web app shares are in :mod:`webui.errors`."""

from __future__ import annotations

from webui.errors import WebError


class PortalError(WebError):
    """A portal request that cannot be done as asked."""

    code = "portal"
    status = 400


class LinkRefused(PortalError):
    code = "link_refused"
    status = 403
