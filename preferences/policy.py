"""The notification policy: one pure function from preferences and a message to a decision.

:func:`decide` does no I/O and reads the time only from its argument, so every rule
below is a row in a table test (``tests/preferences/test_policy.py``).

Importance levels and what they pass (this table is the contract; the README repeats it):

============  ==================  ===================  ==================  ===============
importance    immediate           daily / weekly       major_only          quiet hours
============  ==================  ===================  ==================  ===============
low           send                folded into digest   suppressed          held until end
normal        send                folded into digest   suppressed          held until end
high          send                sent at once         sent at once        held until end
critical      send                sent at once         sent at once        sent anyway
============  ==================  ===================  ==================  ===============

Rules applied before the table, in order:

1. No channel with an address: suppressed (``no_channel``).
2. Marketing needs an active ``marketing`` consent, else suppressed (``no_consent``);
   marketing importance is capped at ``normal`` (an advert is never urgent).
3. A topic the customer opted out of is suppressed (``opted_out``), except repair
   status while the ticket is open: it is never fully silenced and falls back to the
   daily digest (``open_ticket_floor``). The same floor applies when ``major_only``
   would suppress an open ticket's update.

Digests are due at the topic's ``at`` time (weekly: on ``weekday``) in the customer's
time zone, the first such moment after ``now``; a digest time inside quiet hours moves
to the end of the quiet hours. A held message is due when the quiet hours end.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from preferences.model import Detail, Frequency, Importance, Preferences, QuietHours, Topic


class Action(str, enum.Enum):
    SEND = "send"  # hand to the outbox now
    HOLD = "hold"  # quiet hours: send at ``deliver_at``
    DIGEST = "digest"  # fold into the digest due at ``deliver_at``
    SUPPRESS = "suppress"  # not sent; recorded with the reason


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What to do with one notification, and how it would look."""

    action: Action
    channels: tuple[str, ...]  # first choice first; the rest are fallbacks
    detail: Detail
    language: str
    reason: str
    deliver_at: dt.datetime | None = None  # aware UTC, for HOLD and DIGEST
    digest: Frequency | None = None  # DAILY or WEEKLY, for DIGEST


_URGENT = frozenset({Importance.HIGH, Importance.CRITICAL})


def decide(
    prefs: Preferences,
    topic: Topic,
    importance: Importance,
    now: dt.datetime,
    *,
    ticket_open: bool = False,
) -> PolicyDecision:
    """Decide how (and whether) ``topic`` at ``importance`` reaches the customer at ``now``.

    Args:
        prefs: the customer's effective preferences.
        topic: what the message is about.
        importance: how much it matters (see the module table).
        now: an aware datetime.
        ticket_open: for repair: whether the ticket this is about is still open.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tp = prefs.topics[topic]
    channels = prefs.reachable()

    def out(action: Action, reason: str, at: dt.datetime | None = None, digest: Frequency | None = None) -> PolicyDecision:
        return PolicyDecision(action, channels, tp.detail, prefs.language, reason, at, digest)

    if not channels:
        return out(Action.SUPPRESS, "no_channel")
    if topic is Topic.MARKETING:
        if "marketing" not in prefs.consents:
            return out(Action.SUPPRESS, "no_consent")
        if importance in _URGENT:
            importance = Importance.NORMAL
    floor = topic is Topic.REPAIR and ticket_open
    frequency = tp.frequency
    if tp.opted_out:
        if not floor:
            return out(Action.SUPPRESS, "opted_out")
        return _digest(prefs, tp.at, tp.weekday, Frequency.DAILY, now, out, "open_ticket_floor")
    if frequency is Frequency.MAJOR_ONLY and importance not in _URGENT:
        if not floor:
            return out(Action.SUPPRESS, "below_major")
        return _digest(prefs, tp.at, tp.weekday, Frequency.DAILY, now, out, "open_ticket_floor")
    if frequency in (Frequency.DAILY, Frequency.WEEKLY) and importance not in _URGENT:
        return _digest(prefs, tp.at, tp.weekday, frequency, now, out, frequency.value)
    if importance is not Importance.CRITICAL and prefs.quiet_hours is not None:
        local = now.astimezone(prefs.tz)
        if prefs.quiet_hours.contains(local.time()):
            return out(Action.HOLD, "quiet_hours", _next_local(local, prefs.quiet_hours.end, None))
    return out(Action.SEND, "immediate" if frequency is Frequency.IMMEDIATE else "urgent")


def _digest(
    prefs: Preferences,
    at: dt.time,
    weekday: int,
    frequency: Frequency,
    now: dt.datetime,
    out: Callable[[Action, str, dt.datetime | None, Frequency | None], PolicyDecision],
    reason: str,
) -> PolicyDecision:
    return out(Action.DIGEST, reason, digest_due(prefs, at, weekday, frequency, now), frequency)


def digest_due(prefs: Preferences, at: dt.time, weekday: int, frequency: Frequency, now: dt.datetime) -> dt.datetime:
    """The first digest moment after ``now`` (aware UTC), moved out of quiet hours."""
    local = now.astimezone(prefs.tz)
    due = _next_local(local, at, weekday if frequency is Frequency.WEEKLY else None)
    qh: QuietHours | None = prefs.quiet_hours
    if qh is not None and qh.contains(due.astimezone(prefs.tz).time()):
        due = _next_local(due.astimezone(prefs.tz), qh.end, None)
    return due


def _next_local(local: dt.datetime, at: dt.time, weekday: int | None) -> dt.datetime:
    """The first wall-clock ``at`` (on ``weekday``, if given) strictly after ``local``, in UTC."""
    tz = local.tzinfo
    day = local.date()
    for _ in range(9):
        candidate = dt.datetime.combine(day, at, tzinfo=tz)
        if candidate > local and (weekday is None or candidate.weekday() == weekday):
            return candidate.astimezone(dt.timezone.utc)
        day += dt.timedelta(days=1)
    raise AssertionError("unreachable: a weekday recurs within 8 days")
