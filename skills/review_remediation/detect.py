"""Is a review a logistics complaint, and what does it say: order, carrier, days late.

Rules first (cheap, and they see phrasings the NLU was not trained on); the NLU's
``complain_logistics`` intent catches the rest. Extraction is rule-based: order ids by
the marketplaces' formats, the carrier by the names in ``carrier_slas``, days by the
usual "N days late" / "晚了N天" / "等了N天" shapes, Chinese numerals included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOGISTICS = re.compile(
    r"物流|快递|配送|发货|还没到|没收到|未收到|丢件|丢了|延误|延迟|迟到|晚到|太慢|慢死|才到|等了.{0,4}天|"
    r"\bdelay(ed)?\b|\blate\b|not (yet )?(arrived|delivered|received)|never (arrived|came)|hasn'?t arrived|"
    r"\blost\b.*\b(package|parcel)|shipping|delivery|courier|tracking|still waiting|took \d{1,3} days",
    re.I,
)
# Lookarounds, not \b: in "订单DD2024..." the Chinese character is a word character too.
_ORDER = re.compile(r"(?<![A-Za-z0-9])(\d{3}-\d{7}-\d{7}|DD\d{8,}|PO-[A-Z0-9-]{6,}|[0-9]{6}[A-Z0-9]{8})(?![A-Za-z0-9])")
_CN_NUM = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_NUM = r"(\d{1,3}|[一二两三四五六七八九十]{1,3})"
_LATE = (
    re.compile(rf"{_NUM}\s*days?\s*(late|overdue|behind|delay)", re.I),
    re.compile(rf"(late|delayed|overdue) (by )?{_NUM}\s*days?", re.I),
    re.compile(rf"(晚|迟|延误|延迟|拖)了?\s*{_NUM}\s*天"),
)
_TOOK = (
    re.compile(rf"(took|waited|waiting for|after)\s*{_NUM}\s*days?", re.I),
    re.compile(rf"(等了|用了|花了|过了)\s*{_NUM}\s*天"),
    re.compile(rf"{_NUM}\s*天(才到|了还没|还没|都没)"),
)
_WEEK = re.compile(r"一周|一个星期|a week|one week", re.I)
_TWO_WEEKS = re.compile(r"两周|两个星期|two weeks|2 weeks", re.I)


@dataclass(frozen=True, slots=True)
class Complaint:
    order_id: str = ""
    carrier: str = ""
    days_late: int | None = None  # said outright
    days_taken: int | None = None  # "took 9 days": compared with the promise later


def _num(raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    if raw.startswith("十"):
        return 10 + _CN_NUM.get(raw[1:], 0) if len(raw) > 1 else 10
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        return _CN_NUM.get(tens, 1) * 10 + _CN_NUM.get(ones, 0)
    return _CN_NUM.get(raw, 0)


def order_id_in(text: str) -> str:
    """The first order number in ``text`` (the marketplaces' and our own formats), or ``""``."""
    found = _ORDER.search(text)
    return found.group(1) if found else ""


def is_logistics(text: str) -> bool:
    return bool(LOGISTICS.search(text))


def _days(patterns: Iterable[re.Pattern[str]], text: str) -> int | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return _num(next(g for g in reversed(m.groups()) if g and (g.isdigit() or g[0] in _CN_NUM)))
    return None


def extract(text: str, carriers: Mapping[str, str]) -> Complaint:
    """``carriers`` maps each lower-case name or alias to the carrier code (``顺丰`` -> SF)."""
    order = _ORDER.search(text)
    lowered = text.lower()
    carrier = ""
    for name in sorted(carriers, key=len, reverse=True):  # "sf express" before "sf"
        if re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", lowered):
            carrier = carriers[name]
            break
    took = _days(_TOOK, text)
    if took is None and _TWO_WEEKS.search(text):
        took = 14
    elif took is None and _WEEK.search(text):
        took = 7
    return Complaint(order.group(1) if order else "", carrier, _days(_LATE, text), took)
