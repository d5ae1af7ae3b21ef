"""Time as a dependency: the engine, the digests and the stores read it from a Clock.

Tests pass a :class:`ManualClock` and move it forward to make digests fall due.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time in Unix seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; for tests and benchmarks."""

    def __init__(self, start: float | dt.datetime) -> None:
        self._t = start.timestamp() if isinstance(start, dt.datetime) else float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def set(self, when: float | dt.datetime) -> None:
        self._t = when.timestamp() if isinstance(when, dt.datetime) else float(when)


def utc(ts: float) -> dt.datetime:
    """Unix seconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)
