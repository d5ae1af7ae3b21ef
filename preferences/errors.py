"""Errors of the preferences package; each maps to one clear 4xx at the API."""

from __future__ import annotations

from bot.errors import KefuError


class PreferenceError(KefuError):
    """Base of the preference and notification errors."""

    code = "preference_error"
    status: int = 400


class InvalidPreference(PreferenceError):
    """A setting that is not valid: unknown channel, bad time, unknown time zone, ..."""

    code = "invalid_preference"
    status = 400

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class UnknownCustomer(PreferenceError):
    """No customer with that id is known."""

    code = "unknown_customer"
    status = 404


class UnknownVersion(PreferenceError):
    """Rollback to a version the customer's history does not have."""

    code = "unknown_version"
    status = 404


class ConcurrentChange(PreferenceError):
    """Someone else changed the preferences between read and write; try again."""

    code = "concurrent_change"
    status = 409


class ConfirmationInvalid(PreferenceError):
    """An erasure confirmation that is unknown, expired or for another customer."""

    code = "confirmation_invalid"
    status = 400


class LinkInvalid(PreferenceError):
    """A download link whose signature does not match or that has expired."""

    code = "link_invalid"
    status = 403


class CustomersOwnChoice(PreferenceError):
    """A change the customer made themself: staff may not undo or override it."""

    code = "customers_own_choice"
    status = 409
