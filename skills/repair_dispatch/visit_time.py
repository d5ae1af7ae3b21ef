"""The visit time a customer asked for ("明天上午", "tomorrow afternoon", "周五下午3点").

A day (today, tomorrow, the day after, a weekday) and a part of it (morning, afternoon,
evening, or an hour) become a booking window in the company's time zone. "尽快" / "asap"
and anything without a day or a part of the day is not a booking: the engineer comes as
soon as possible.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_DAYS_ZH = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
_DAYS_EN = {"today": 0, "tomorrow": 1, "day after tomorrow": 2}
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS_EN = {d: i for i, d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
# Part of the day -> (start hour, end hour, key used in replies)
_PARTS_ZH = {"上午": (9, 12, "morning"), "早上": (9, 12, "morning"), "中午": (11, 14, "noon"), "下午": (13, 18, "afternoon"), "晚上": (18, 21, "evening")}
_PARTS_EN = {"morning": (9, 12, "morning"), "noon": (11, 14, "noon"), "afternoon": (13, 18, "afternoon"), "evening": (18, 21, "evening")}
_ZH_DAY = re.compile(r"(今天|今日|明天|明日|后天)|(?:下?周|星期|礼拜)([一二三四五六日天])")
_EN_DAY = re.compile(r"\b(day after tomorrow|tomorrow|today)\b|\b(?:next |this )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)
_ZH_HOUR = re.compile(r"(\d{1,2})\s*[点:：]")
_EN_HOUR = re.compile(r"\b(\d{1,2})(?::00)?\s*(am|pm)\b|\bat (\d{1,2})\b", re.I)
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10, "十一": 11, "十二": 12}
_ZH_HOUR_WORD = re.compile(r"(十[一二]?|[一二两三四五六七八九])\s*点")


@dataclass(frozen=True, slots=True)
class VisitWindow:
    """A booking window: when the engineer comes, as Unix seconds and its day/part."""

    start: float
    end: float
    day: str  # YYYY-MM-DD, local
    part: str  # morning, noon, afternoon, evening, or "HH:00"

    def slot_key(self) -> str:
        """Bookings with the same key compete for the same engineers' time."""
        return f"{self.day}:{self.part}"


def parse_visit_time(text: str, *, now: float, timezone: str) -> VisitWindow | None:
    """The window the customer asked for, or ``None`` (as soon as possible)."""
    zone = ZoneInfo(timezone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    offset = _day_offset(text, today)
    hours = _part(text)
    if offset is None and hours is None:
        return None
    day = today + dt.timedelta(days=offset or 0)
    start_h, end_h, part = hours or (9, 18, "day")
    start = dt.datetime.combine(day, dt.time(start_h), zone).timestamp()
    end = dt.datetime.combine(day, dt.time(end_h), zone).timestamp()
    if end <= now:  # "today morning" said in the afternoon: the same part of tomorrow
        day += dt.timedelta(days=1)
        start += 86_400
        end += 86_400
    return VisitWindow(start, end, day.isoformat(), part)


_ASAP = re.compile(r"尽快|越快越好|马上|立刻|立即|随时|什么时候都行|asap|as soon as possible|any ?time|whenever|right away", re.I)


def names_a_time(text: str) -> bool:
    """Whether ``text`` names a visit time: a day or part of the day, or "as soon as possible"."""
    return bool(_ZH_DAY.search(text) or _EN_DAY.search(text) or _part(text) is not None or _ASAP.search(text))


# Words that may stand around a time without making it about something else.
_AROUND = re.compile(
    r"改到|改成|改在|换到|换成|可以|行吗|好吗|吧|吗|呢|来|上门|请|能|的|"
    r"\b(?:how about|what about|can you|could you|please|come|make it|is|ok|okay|instead|then|in the|on|at|would|be|fine)\b",
    re.I,
)


def only_a_time(text: str) -> bool:
    """``text`` says a visit day or hour and little else ("tomorrow morning", "改到明天上午吧"),
    not "as soon as possible", not "good morning", and not a sentence about something else."""
    if not (_ZH_DAY.search(text) or _EN_DAY.search(text) or _hour(text) is not None):
        return False
    rest = _AROUND.sub("", _strip_time(text))
    return len(re.sub(r"[\W_]+", "", rest)) <= 4


def _strip_time(text: str) -> str:
    text = _ZH_DAY.sub("", text)
    text = _EN_DAY.sub("", text)
    text = _ZH_HOUR.sub("", _ZH_HOUR_WORD.sub("", _EN_HOUR.sub("", text)))
    text = re.sub("|".join(_PARTS_ZH), "", text)
    return re.sub(r"\b(?:morning|noon|afternoon|evening)\b", "", text, flags=re.I)


def _day_offset(text: str, today: dt.date) -> int | None:
    if m := _ZH_DAY.search(text):
        if m.group(1):
            return _DAYS_ZH[m.group(1)]
        return _until_weekday(today, _WEEKDAYS_ZH[m.group(2)], next_week=text[m.start()] == "下")
    if m := _EN_DAY.search(text):
        if m.group(1):
            return _DAYS_EN[m.group(1).lower()]
        return _until_weekday(today, _WEEKDAYS_EN[m.group(2).lower()], next_week="next" in m.group(0).lower())
    return None


def _until_weekday(today: dt.date, weekday: int, *, next_week: bool) -> int:
    ahead = (weekday - today.weekday()) % 7
    return ahead + 7 if next_week and ahead < 7 else ahead


def _part(text: str) -> tuple[int, int, str] | None:
    hour = _hour(text)
    lowered = text.lower()
    english = re.search(r"\b(morning|noon|afternoon|evening)\b", lowered)
    part = next((v for k, v in _PARTS_ZH.items() if k in text), None) or (_PARTS_EN[english.group(1)] if english else None)
    if hour is not None:
        if part is not None and part[2] in ("afternoon", "evening") and hour < 12:
            hour += 12
        return (hour, min(hour + 2, 23), f"{hour:02d}:00")
    return part


def _hour(text: str) -> int | None:
    if m := _ZH_HOUR.search(text):
        return int(m.group(1)) if int(m.group(1)) < 24 else None
    if m := _ZH_HOUR_WORD.search(text):
        return _CN_DIGITS[m.group(1)]
    if m := _EN_HOUR.search(text):
        if m.group(3):
            return int(m.group(3)) if int(m.group(3)) < 24 else None
        value = int(m.group(1)) % 12
        return value + 12 if m.group(2).lower() == "pm" else value
    return None
