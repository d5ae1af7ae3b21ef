"""Kefu's exception hierarchy: every error carries a short code and a message.

Modelled on wechatpy's ``exceptions.py``: one small tree per concern, so callers catch
what they can act on (a retryable platform failure, rejected input) and nothing else.
"""

from __future__ import annotations


class KefuError(Exception):
    """Base of every error Kefu raises on purpose."""

    code: str = "kefu_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(KefuError):
    """The configuration is missing something or contradicts itself."""

    code = "config"


class ServiceUnavailable(KefuError):
    """Redis or MongoDB cannot be reached right now."""

    code = "service_unavailable"
