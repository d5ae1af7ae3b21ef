"""The knowledge package's errors: each carries a code and a message."""

from __future__ import annotations

from bot.errors import KefuError


class KnowledgeError(KefuError):
    """Something about the knowledge base went wrong."""

    code = "knowledge"
    status = 400  # the JSON API's answer (bot.api maps it)


class InvalidEntry(KnowledgeError):
    """An entry (from the API or an import file) is malformed."""

    code = "invalid_entry"


class UnknownEntry(KnowledgeError):
    """No entry has this id."""

    code = "unknown_entry"
    status = 404


class VersionConflict(KnowledgeError):
    """The entry changed since the caller read it."""

    code = "version_conflict"
    status = 409


class UnknownLabel(KnowledgeError):
    """No trainer label has this id."""

    code = "unknown_label"
    status = 404


class ReviewRefused(KnowledgeError):
    """A review that cannot be done: the label was reviewed already, or it is the
    reviewer's own label."""

    code = "review_refused"
    status = 409
