"""The console's own errors; the ones every web app shares are in :mod:`webui.errors`."""

from __future__ import annotations

from webui.errors import WebError


class ConsoleError(WebError):
    """A console request that cannot be done as asked."""

    code = "console"
    status = 400


class TooManyAttempts(ConsoleError):
    code = "too_many_attempts"
    status = 429
