"""The NLU package's one small exception hierarchy.

Every error carries a short machine-readable ``code`` next to its message, so that
callers can branch on it and logs can be grepped for it.
"""

from __future__ import annotations

from bot.errors import ConfigError, KefuError


class NluError(KefuError):
    """Base class for every error raised by :mod:`bot.nlu`."""

    code = "nlu_error"

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class NluSettingsError(ConfigError, ValueError):
    """The ``nlu:`` settings section has a bad key or value (also a ``ValueError``)."""

    code = "nlu_config"


class NluUnavailable(NluError):
    """No Rasa server answered in time (all down, refusing, slow, or circuit open).

    The caller should hold the message and retry later, or send an honest holding
    reply; it must not guess an intent.

    Attributes:
        failures: ``(url, reason)`` for every URL tried or skipped, in order.
    """

    code = "nlu_unavailable"

    def __init__(self, message: str, failures: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


class RasaSetupError(NluError):
    """Installing, training or starting the Rasa service failed.

    The message says what to do about it (which Python to install, which log to read).
    """

    code = "rasa_setup"
