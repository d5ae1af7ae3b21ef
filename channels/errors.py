"""Errors of the channel layer: rejected webhooks and failed platform calls."""

from __future__ import annotations

from bot.errors import KefuError


class WebhookRejected(KefuError):
    """A webhook request that must not be processed; answered with ``status``."""

    code = "rejected"
    status: int = 400


class BadSignature(WebhookRejected):
    """The signature does not match the configured token."""

    code = "bad_signature"
    status = 403


class StaleTimestamp(WebhookRejected):
    """The request's timestamp is outside the accepted window (a replay or a bad clock)."""

    code = "stale_timestamp"
    status = 403


class DecryptFailed(WebhookRejected):
    """The payload could not be decrypted with the configured key."""

    code = "decrypt_failed"
    status = 400


class MalformedPayload(WebhookRejected):
    """The payload is not well-formed, carries a DTD/entities, or lacks required fields."""

    code = "malformed"
    status = 400


class BadEncoding(WebhookRejected):
    """The body is compressed, or not in the character encoding the platform uses."""

    code = "bad_encoding"
    status = 400


class TooDeep(WebhookRejected):
    """The payload nests deeper than any platform message does."""

    code = "too_deep"
    status = 400


class PayloadTooLarge(WebhookRejected):
    """The body is over the configured size limit."""

    code = "too_large"
    status = 413


class UnknownAccount(WebhookRejected):
    """No account of that name is configured for the channel."""

    code = "unknown_account"
    status = 404


class PlatformError(KefuError):
    """A platform API answered with an error or not at all.

    ``retryable`` tells the outbox whether trying again later can help.
    """

    code = "platform_error"
    retryable = False

    def __init__(self, message: str = "", *, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode


class PlatformUnavailable(PlatformError):
    """Timeout, connection failure or a 5xx: the platform may take it later."""

    code = "platform_unavailable"
    retryable = True


class TokenInvalid(PlatformError):
    """The access token was rejected (expired or rotated elsewhere)."""

    code = "token_invalid"
    retryable = True


class OutsideServiceWindow(PlatformError):
    """The customer has not written within the platform's reply window (WeChat: 48 h)."""

    code = "outside_window"


class RateLimited(PlatformError):
    """The platform's quota or rate limit is exhausted for now."""

    code = "rate_limited"
    retryable = True


class PermanentSendError(PlatformError):
    """The platform refused the message for a reason retrying cannot fix."""

    code = "refused"
