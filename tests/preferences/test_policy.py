"""The policy as a table: channel x frequency x detail x quiet hours x importance."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from preferences.model import Detail, Frequency, Importance, Topic, resolve, validate_layer
from preferences.policy import Action, decide
from preferences.errors import InvalidPreference

SH = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime(2026, 3, 4, 10, 0, tzinfo=SH)  # Wednesday 10:00
NIGHT = dt.datetime(2026, 3, 4, 23, 30, tzinfo=SH)  # inside 22:00-08:00
ADDRESSES = {
    "wechat": {"account": "demo", "openid": "o1"},
    "wecom": {"userid": "u1"},
    "dingtalk": {"staff_id": "s1"},
    "email": {"address": "a@example.cn"},
}


def prefs(channel: str, frequency: str, detail: str, *, quiet: bool = True, opted_out: bool = False, consent: bool = False, topic: str = "repair"):  # type: ignore[no-untyped-def]
    layer = validate_layer(
        {
            "channels": [channel, *(c for c in ADDRESSES if c != channel)],
            "addresses": ADDRESSES,
            "quiet_hours": {"start": "22:00", "end": "08:00"} if quiet else None,
            "topics": {topic: {"frequency": frequency, "detail": detail, "opted_out": opted_out, "at": "09:00", "weekday": 0}},
        }
    )
    return resolve("c", [layer], frozenset({"marketing"}) if consent else frozenset())


def utc(y: int, m: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=SH).astimezone(dt.timezone.utc)


NEXT_DAILY = utc(2026, 3, 5, 9)  # Thursday 09:00
NEXT_WEEKLY = utc(2026, 3, 9, 9)  # Monday 09:00
QUIET_END = utc(2026, 3, 5, 8)

# (frequency, importance, night?) -> (action, deliver_at, reason)
TABLE: dict[tuple[str, str, bool], tuple[Action, dt.datetime | None, str]] = {}
for night in (False, True):
    for imp in Importance:
        urgent = imp in (Importance.HIGH, Importance.CRITICAL)
        held = night and imp is not Importance.CRITICAL
        now_path = (Action.HOLD, QUIET_END, "quiet_hours") if held else None
        TABLE[("immediate", imp.value, night)] = now_path or (Action.SEND, None, "immediate")
        for f, due in (("daily", NEXT_DAILY), ("weekly", NEXT_WEEKLY)):
            TABLE[(f, imp.value, night)] = (now_path or (Action.SEND, None, "urgent")) if urgent else (Action.DIGEST, due, f)
        TABLE[("major_only", imp.value, night)] = (now_path or (Action.SEND, None, "urgent")) if urgent else (Action.SUPPRESS, None, "below_major")


@pytest.mark.parametrize(
    "channel,frequency,detail,night,importance",
    list(itertools.product(list(ADDRESSES), [f.value for f in Frequency], [d.value for d in Detail], [False, True], [i.value for i in Importance])),
)
def test_policy_table(channel: str, frequency: str, detail: str, night: bool, importance: str) -> None:
    p = prefs(channel, frequency, detail)
    got = decide(p, Topic.RENEWAL if False else Topic.REPAIR, Importance(importance), NIGHT if night else DAY, ticket_open=False)
    action, due, reason = TABLE[(frequency, importance, night)]
    assert (got.action, got.deliver_at, got.reason) == (action, due, reason)
    assert got.channels[0] == channel and len(got.channels) == 4  # the rest are fallbacks
    assert got.detail.value == detail


def test_no_quiet_hours_sends_at_night() -> None:
    assert decide(prefs("wechat", "immediate", "brief", quiet=False), Topic.REPAIR, Importance.LOW, NIGHT).action is Action.SEND


@pytest.mark.parametrize("importance", [i.value for i in Importance])
def test_marketing_needs_consent_and_is_never_urgent(importance: str) -> None:
    no = decide(prefs("wechat", "immediate", "brief", topic="marketing"), Topic.MARKETING, Importance(importance), DAY)
    assert (no.action, no.reason) == (Action.SUPPRESS, "no_consent")
    yes = decide(prefs("wechat", "major_only", "brief", topic="marketing", consent=True), Topic.MARKETING, Importance(importance), DAY)
    assert (yes.action, yes.reason) == (Action.SUPPRESS, "below_major")  # capped at normal
    night = decide(prefs("wechat", "immediate", "brief", topic="marketing", consent=True), Topic.MARKETING, Importance(importance), NIGHT)
    assert night.action is Action.HOLD


@pytest.mark.parametrize("frequency", ["immediate", "major_only"])
def test_open_repair_ticket_is_never_fully_silenced(frequency: str) -> None:
    opted = prefs("wechat", frequency, "brief", opted_out=True)
    assert decide(opted, Topic.REPAIR, Importance.LOW, DAY, ticket_open=False).action is Action.SUPPRESS
    floor = decide(opted, Topic.REPAIR, Importance.LOW, DAY, ticket_open=True)
    assert (floor.action, floor.reason, floor.deliver_at) == (Action.DIGEST, "open_ticket_floor", NEXT_DAILY)
    major = decide(prefs("wechat", "major_only", "brief"), Topic.REPAIR, Importance.NORMAL, DAY, ticket_open=True)
    assert major.action is Action.DIGEST


def test_digest_time_in_quiet_hours_moves_to_their_end() -> None:
    layer = validate_layer({"addresses": {"email": {"address": "a@example.cn"}}, "topics": {"review": {"frequency": "daily", "at": "23:00"}}})
    got = decide(resolve("c", [layer]), Topic.REVIEW, Importance.NORMAL, DAY)
    assert got.deliver_at == QUIET_END


def test_time_zone_is_the_customers() -> None:
    layer = validate_layer({"addresses": {"email": {"address": "a@example.cn"}}, "timezone": "Europe/London"})
    # 10:00 in Shanghai is 02:00 in London: quiet there, held until 08:00 London.
    got = decide(resolve("c", [layer]), Topic.ACCOUNT, Importance.NORMAL, DAY)
    assert got.action is Action.HOLD
    assert got.deliver_at == dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.timezone.utc)


def test_no_address_suppresses() -> None:
    got = decide(resolve("c", []), Topic.ACCOUNT, Importance.CRITICAL, DAY)
    assert (got.action, got.reason) == (Action.SUPPRESS, "no_channel")


@pytest.mark.parametrize(
    "layer,field",
    [
        ({"channels": ["fax"]}, "channels"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"topics": {"repair": {"frequency": "hourly"}}}, "topics.repair.frequency"),
        ({"addresses": {"email": {"address": "not-an-email"}}}, "addresses.email.address"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_layers_name_the_field(layer: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPreference) as exc:
        validate_layer(layer)
    assert exc.value.field == field
