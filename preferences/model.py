"""What a customer can choose, how settings layers merge, and how they are validated.

Settings are stored as sparse *layers* of plain JSON (what the API takes and returns):
the built-in defaults, the marketers' global default, the customer's segments (in
order) and finally the customer's own choices, each overriding the one before.
:func:`resolve` merges the layers and turns them into a frozen :class:`Preferences`
that the pure policy reads.

A layer looks like::

    {
      "channels": ["email", "wechat"],
      "addresses": {"wechat": {"account": "demo", "openid": "o..."},
                    "email": {"address": "li@example.cn"}},
      "language": "zh",
      "timezone": "Asia/Shanghai",
      "quiet_hours": {"start": "22:00", "end": "08:00"},   # null: none
      "topics": {"repair": {"frequency": "daily", "at": "09:00", "detail": "full"},
                 "marketing": {"opted_out": true}}
    }
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import functools
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels import BUILTIN_CHANNELS
from channels.base import Channel
from preferences.errors import InvalidPreference

JsonDict = dict[str, Any]


class Topic(str, enum.Enum):
    REPAIR = "repair"
    RENEWAL = "renewal"
    REVIEW = "review"
    ACCOUNT = "account"
    MARKETING = "marketing"


class Frequency(str, enum.Enum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"
    MAJOR_ONLY = "major_only"


class Detail(str, enum.Enum):
    BRIEF = "brief"
    STANDARD = "standard"
    FULL = "full"


class Importance(str, enum.Enum):
    """How much a notification matters; the policy table in :mod:`preferences.policy`
    says what each level may bypass."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


LANGUAGES = ("zh", "en")

# ZoneInfo reads the zone file on first use and caches it for the process: load the
# zones our customers use at import (startup) so the event loop never waits on disk.
# Another zone is read once, on first use.
_COMMON_ZONES = (
    "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Macau", "Asia/Urumqi", "Asia/Singapore",
    "Asia/Tokyo", "Asia/Seoul", "UTC", "Europe/London", "Europe/Berlin", "America/New_York",
    "America/Los_Angeles", "Australia/Sydney",
)
# Held here because ZoneInfo's own cache keeps only 8 zones strongly.
_ZONES: dict[str, zoneinfo.ZoneInfo] = {name: zoneinfo.ZoneInfo(name) for name in _COMMON_ZONES}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone ``name`` (cached for the process); raises ``ZoneInfoNotFoundError``."""
    tz = _ZONES.get(name)
    if tz is None:
        tz = _ZONES[name] = zoneinfo.ZoneInfo(name)
    return tz

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

#: The built-in bottom layer without its channel order (that comes from the registry).
_DEFAULTS: JsonDict = {
    "addresses": {},
    "language": "zh",
    "timezone": "Asia/Shanghai",
    "quiet_hours": {"start": "22:00", "end": "08:00"},
    "topics": {
        t.value: {"frequency": "immediate", "detail": "standard", "opted_out": False, "at": "09:00", "weekday": 0}
        for t in Topic
    },
}


@dataclass(frozen=True, slots=True)
class ChannelBook:
    """What preferences know of the channels a gateway has, derived from its registry."""

    classes: Mapping[str, type[Channel]]
    #: The built-in bottom layer: every field has a value after merging over it.
    defaults: Mapping[str, Any]

    @classmethod
    def of(cls, registry: Mapping[str, type[Channel]]) -> ChannelBook:
        return cls(registry, {"channels": list(registry), **_DEFAULTS})

    def recipient_field(self, channel: str) -> str | None:
        found = self.classes.get(channel)
        return None if found is None else found.recipient_field

    def check(self, value: Any, field: str) -> str:
        """``value`` if it names a known channel; else :class:`InvalidPreference`."""
        if isinstance(value, str) and value in self.classes:
            return value
        raise InvalidPreference(f"{field}: unknown value {value!r} (known: {', '.join(self.classes)})", field=field)


BUILTIN_BOOK = ChannelBook.of(BUILTIN_CHANNELS)


@dataclass(frozen=True, slots=True)
class Address:
    """Where one channel reaches the customer."""

    channel: str
    account: str
    recipient: str
    # What a send needs besides the recipient (a WeCom KF address's open_kfid).
    extras: tuple[tuple[str, str], ...] = ()

    def fields(self, recipient_field: str) -> dict[str, str]:
        """The address as its channel names the parts."""
        return {recipient_field: self.recipient, **dict(self.extras)}


@dataclass(frozen=True, slots=True)
class Notification:
    """One proactive message a skill asks for; the engine decides how and when it goes out.

    ``data`` are the template's variables (for repair, ``ticket_open: false`` marks an
    update about a closed ticket); ``key`` is the caller's id of the event (by default the
    data itself identifies it); ``template`` renders another template than the topic's.
    """

    customer: str
    topic: Topic
    importance: Importance
    data: Mapping[str, Any]
    key: str | None = None
    template: str | None = None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window (local time) in which non-critical messages wait; may span midnight."""

    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class TopicPrefs:
    frequency: Frequency
    detail: Detail
    opted_out: bool
    at: dt.time  # digest time of day (daily and weekly)
    weekday: int  # weekly digest day, 0 = Monday


@dataclass(frozen=True, slots=True)
class Preferences:
    """A customer's effective preferences, all layers merged; what the policy reads."""

    customer_id: str
    channels: tuple[str, ...]
    addresses: Mapping[str, Address]
    language: str
    timezone: str
    quiet_hours: QuietHours | None
    topics: Mapping[Topic, TopicPrefs]
    consents: frozenset[str]  # topics/purposes with an active consent, e.g. {"marketing"}

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zone(self.timezone)

    def reachable(self) -> tuple[str, ...]:
        """The channel order, keeping only channels with an address."""
        return tuple(c for c in self.channels if c in self.addresses)


def parse_time(value: Any, field: str) -> dt.time:
    if isinstance(value, str):
        m = _TIME.match(value.strip())
        if m:
            return dt.time(int(m.group(1)), int(m.group(2)))
    raise InvalidPreference(f"{field}: invalid time {value!r}, expected HH:MM", field=field)


def _enum(kind: type[enum.Enum], value: Any, field: str) -> str:
    try:
        return str(kind(value).value)
    except ValueError:
        known = ", ".join(str(m.value) for m in kind)
        raise InvalidPreference(f"{field}: unknown value {value!r} (known: {known})", field=field) from None


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPreference(f"{field}: expected an object", field=field)
    return value


def _check_keys(data: Mapping[str, Any], known: set[str], field: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{field}: " if field else ""
        raise InvalidPreference(f"{where}unknown field(s) {unknown}", field=f"{field}.{unknown[0]}".lstrip("."))


def validate_layer(data: Any, book: ChannelBook = BUILTIN_BOOK) -> JsonDict:
    """Check a (partial) settings layer and return it normalised; ``book`` names the
    channels there are.

    Raises:
        InvalidPreference: naming the first offending field.
    """
    data = _mapping(data, "settings")
    _check_keys(data, {"channels", "addresses", "language", "timezone", "quiet_hours", "topics"}, "")
    out: JsonDict = {}
    if "channels" in data:
        chans = data["channels"]
        if not isinstance(chans, list) or not chans:
            raise InvalidPreference("channels: expected a non-empty list", field="channels")
        names = [book.check(c, "channels") for c in chans]
        if len(set(names)) != len(names):
            raise InvalidPreference("channels: a channel appears twice", field="channels")
        out["channels"] = names
    if "addresses" in data:
        out["addresses"] = {}
        for name, addr in _mapping(data["addresses"], "addresses").items():
            channel = book.check(name, "addresses")
            field = f"addresses.{channel}"
            if addr is None:  # explicit removal
                out["addresses"][channel] = None
                continue
            addr = _mapping(addr, field)
            cls = book.classes[channel]
            rfield = cls.recipient_field
            _check_keys(addr, {"account", rfield, *cls.address_extras}, field)
            recipient = addr.get(rfield)
            if not isinstance(recipient, str) or not recipient.strip():
                raise InvalidPreference(f"{field}.{rfield}: required", field=f"{field}.{rfield}")
            problem = cls.recipient_problem(recipient)
            if problem is not None:
                raise InvalidPreference(f"{field}.{rfield}: {problem}", field=f"{field}.{rfield}")
            account = addr.get("account", "")
            if not isinstance(account, str):
                raise InvalidPreference(f"{field}.account: expected a string", field=f"{field}.account")
            extras: JsonDict = {}
            for name in cls.address_extras:
                value = addr.get(name)
                if value is None:
                    continue
                if not isinstance(value, str) or not value.strip():
                    raise InvalidPreference(f"{field}.{name}: expected a non-empty string", field=f"{field}.{name}")
                extras[name] = value.strip()
            out["addresses"][channel] = {"account": account, rfield: recipient.strip(), **extras}
    if "language" in data:
        if data["language"] not in LANGUAGES:
            raise InvalidPreference(f"language: unknown {data['language']!r} (known: zh, en)", field="language")
        out["language"] = data["language"]
    if "timezone" in data:
        tz = data["timezone"]
        try:
            zone(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidPreference(f"timezone: unknown time zone {tz!r}", field="timezone") from None
        out["timezone"] = str(tz)
    if "quiet_hours" in data:
        qh = data["quiet_hours"]
        if qh is None:
            out["quiet_hours"] = None
        else:
            qh = _mapping(qh, "quiet_hours")
            _check_keys(qh, {"start", "end"}, "quiet_hours")
            out["quiet_hours"] = {
                k: parse_time(qh.get(k), f"quiet_hours.{k}").strftime("%H:%M") for k in ("start", "end")
            }
    if "topics" in data:
        out["topics"] = {}
        for name, tp in _mapping(data["topics"], "topics").items():
            topic = _enum(Topic, name, "topics")
            field = f"topics.{topic}"
            tp = _mapping(tp, field)
            _check_keys(tp, {"frequency", "detail", "opted_out", "at", "weekday"}, field)
            norm: JsonDict = {}
            if "frequency" in tp:
                norm["frequency"] = _enum(Frequency, tp["frequency"], f"{field}.frequency")
            if "detail" in tp:
                norm["detail"] = _enum(Detail, tp["detail"], f"{field}.detail")
            if "opted_out" in tp:
                if not isinstance(tp["opted_out"], bool):
                    raise InvalidPreference(f"{field}.opted_out: expected true/false", field=f"{field}.opted_out")
                norm["opted_out"] = tp["opted_out"]
            if "at" in tp:
                norm["at"] = parse_time(tp["at"], f"{field}.at").strftime("%H:%M")
            if "weekday" in tp:
                wd = tp["weekday"]
                if not isinstance(wd, int) or isinstance(wd, bool) or not 0 <= wd <= 6:
                    raise InvalidPreference(f"{field}.weekday: expected 0 (Monday) .. 6 (Sunday)", field=f"{field}.weekday")
                norm["weekday"] = wd
            out["topics"][topic] = norm
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> JsonDict:
    """``over`` on top of ``base``: objects merge key by key, everything else replaces.
    The result shares nothing with the inputs (callers store and change it)."""
    out: JsonDict = copy.deepcopy(dict(_overlay(base, over)))
    return out


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`merge` without copies, for a read-only result: objects on the merged path
    are new, everything else is shared with the inputs. ``resolve`` runs once per
    customer in a digest build, where deep copies of every layer would be most of its cost."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        # dict, not Mapping: layers are BSON/JSON dicts, and ABC checks were a third of the cost.
        out[key] = _overlay(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return out


@functools.lru_cache(maxsize=4096)
def _topic_prefs(name: str, frequency: str, detail: str, opted_out: bool, at: str, weekday: int) -> TopicPrefs:
    # Few distinct combinations exist across all customers, and TopicPrefs is frozen:
    # sharing them spares a digest build of 100,000 customers half a million parses.
    return TopicPrefs(Frequency(frequency), Detail(detail), opted_out, parse_time(at, f"topics.{name}.at"), weekday)


def resolve(
    customer_id: str, layers: list[Mapping[str, Any]], consents: frozenset[str] = frozenset(), book: ChannelBook = BUILTIN_BOOK
) -> Preferences:
    """Merge ``layers`` (lowest first) over the built-in defaults into :class:`Preferences`.

    A stored channel this gateway no longer has is left out."""
    merged: Mapping[str, Any] = book.defaults
    for layer in layers:
        merged = _overlay(merged, layer)
    addresses: dict[str, Address] = {}
    for name, addr in (merged.get("addresses") or {}).items():
        cls = book.classes.get(name)
        if addr is None or cls is None:
            continue
        extras = tuple((k, str(addr[k])) for k in cls.address_extras if addr.get(k))
        addresses[name] = Address(name, str(addr.get("account", "")), str(addr[cls.recipient_field]), extras)
    qh = merged.get("quiet_hours")
    topics = {
        Topic(name): _topic_prefs(name, tp["frequency"], tp["detail"], bool(tp["opted_out"]), tp["at"], int(tp["weekday"]))
        for name, tp in merged["topics"].items()
    }
    return Preferences(
        customer_id=customer_id,
        channels=tuple(c for c in merged["channels"] if c in book.classes),
        addresses=addresses,
        language=str(merged["language"]),
        timezone=str(merged["timezone"]),
        quiet_hours=None if not qh else QuietHours(parse_time(qh["start"], "quiet_hours.start"), parse_time(qh["end"], "quiet_hours.end")),
        topics=topics,
        consents=consents,
    )
