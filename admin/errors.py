"""The console's errors: each carries a code, an HTTP status and a message for the user."""

from __future__ import annotations

from bot.errors import KefuError


class ConsoleError(KefuError):
    """A console request that cannot be done as asked."""

    code = "console"
    status = 400


class NotFound(ConsoleError):
    code = "not_found"
    status = 404


class Forbidden(ConsoleError):
    code = "forbidden"
    status = 403


class BadInput(ConsoleError):
    code = "bad_input"
    status = 400


class TooManyAttempts(ConsoleError):
    code = "too_many_attempts"
    status = 429
