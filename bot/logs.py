"""Logging that an operator and an auditor can both live with.

Three rules hold everywhere:

- Customer content and identifiers (openids, user ids, addresses, what they wrote)
  never appear above DEBUG. Where a line must name a customer, a conversation or a
  message it uses :func:`ref`, a stable keyed hash: the same id gives the same ref in
  every process, so lines can be correlated without the id itself being shipped.
- Rejected input is one classified line, rate-limited (:class:`Throttle`), never a
  traceback.
- A dependency that is down is reported once when it goes and once when it comes back
  (:class:`Outage`), not once a second.

``log.format: json`` gives one JSON object per line with the conversation and message
refs of the turn being handled (set through :func:`context`), for Loki or ELK.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

_conversation: contextvars.ContextVar[str] = contextvars.ContextVar("kefu_conversation", default="")
_message: contextvars.ContextVar[str] = contextvars.ContextVar("kefu_message", default="")


def ref(identifier: str) -> str:
    """A short stable stand-in for a customer-linked identifier, safe to log."""
    if not identifier:
        return "-"
    digest = hashlib.blake2b(identifier.encode("utf-8", "surrogatepass"), digest_size=6, person=b"kefu-log").hexdigest()
    return "h:" + digest


@contextlib.contextmanager
def context(*, conversation: str = "", message: str = "") -> Iterator[None]:
    """Tag every log line inside the block with the refs of a conversation and message."""
    tokens = (_conversation.set(ref(conversation) if conversation else ""), _message.set(ref(message) if message else ""))
    try:
        yield
    finally:
        _conversation.reset(tokens[0])
        _message.reset(tokens[1])


class ContextFilter(logging.Filter):
    """Copies the current conversation and message refs onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation = _conversation.get()
        record.message_id = _message.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, conversation, message_id."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("conversation", "message_id"):
            value = getattr(record, name, "")
            if value:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s%(refs)s")

    def format(self, record: logging.LogRecord) -> str:
        conv, msg = getattr(record, "conversation", ""), getattr(record, "message_id", "")
        record.refs = f" [conv={conv} msg={msg}]" if conv or msg else ""
        return super().format(record)


def configure(section: Mapping[str, Any], *, verbose: bool = False) -> None:
    """Install the root handler from the ``log`` section (format: text|json, level)."""
    fmt = str(section.get("format", "text"))
    if fmt not in ("text", "json"):
        from bot.errors import ConfigError

        raise ConfigError(f"log.format must be text or json, not {fmt!r}")
    level = logging.DEBUG if verbose else logging.getLevelName(str(section.get("level", "INFO")).upper())
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_unreadable_bodies()


class _UnreadableBody(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, (RequestPayloadError, HttpProcessingError))


def quiet_unreadable_bodies() -> None:
    """Drop aiohttp's own traceback for a request body it cannot read (a bad
    Content-Encoding, a broken chunked body): the client sent junk, the webhook already
    answered it and logged one classified line. Other server errors still show."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _UnreadableBody) for f in server.filters):
        server.addFilter(_UnreadableBody())


class Throttle:
    """At most one line per key every ``interval_s``; the next says how many were held back."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log unless ``key`` was logged within the interval; returns whether it did."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) > 10_000:  # keys come from a small closed set; this is a guard
            self._last.clear()
            self._held.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like it in the last %.0f s)"
            args = (*args, held, self.interval_s)
        self._log.log(level, msg, *args)
        return True


class Outage:
    """Tracks one dependency seen from one loop: a line when it fails, one when it is back."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self.what = what
        self.since: float | None = None
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self._log.error("%s failing: %s: %s; retrying quietly until it recovers", self.what, type(exc).__name__, exc)
        else:
            self._log.debug("%s still failing: %s", self.what, exc, exc_info=True)

    def ok(self) -> None:
        if self.since is not None:
            self._log.warning(
                "%s recovered after %.1f s (%d failed attempts)", self.what, time.monotonic() - self.since, self.failures
            )
        self.since = None
        self.failures = 0
