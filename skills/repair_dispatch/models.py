"""Device model numbers as customers say them, matched against the ones we know.

Whisper writes a spoken "QT-7700" as "QT 7,700", "QT seven seven hundred" or
"QT seventy-seven hundred", and typists drop the hyphen ("XK 8800", "xk8800"). Each
mention is reduced to a key (letters + digits, number words turned into digits) and
looked up among the catalogue's models (every model on a device or a part) and the
customer's own devices. What matches neither is not a device model: "10" in "我的快递10天了还没到"
is a number of days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORD = "|".join([*_UNITS, *_TENS, "hundred", "thousand"])
_SPOKEN = re.compile(rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*\b", re.I)
# Letters, then digits that may be split by spaces, commas, dots or hyphens ("QT 7,700").
_MENTION = re.compile(r"(?<![A-Za-z])([A-Za-z]{1,4})[\s\-_]*(\d(?:[\d,.\s\-]*\d)?)(?!\d)")


def model_key(model: str) -> str:
    """``QT-7700`` -> ``QT7700``: what two spellings of one model have in common."""
    return re.sub(r"[^A-Z0-9]", "", model.upper())


def spoken_digits(words: str) -> str:
    """English number words as digits: "seven seven hundred" -> "7700",
    "eight thousand eight hundred" -> "8800", "seventy-seven hundred" -> "7700"."""
    total, current, after_tens = 0, "", False
    for word in re.split(r"[\s-]+", words.lower().strip()):
        if word in _UNITS:
            value = _UNITS[word]
            # "twenty two" adds to the tens; "seven seven" strings digits together.
            current = str(int(current) + value) if after_tens and value < 10 else current + str(value)
        elif word in _TENS:
            current += str(_TENS[word])
        elif word == "hundred":
            current = str(int(current or "1") * 100)
        elif word == "thousand":
            total += int(current or "1") * 1000
            current = ""
        after_tens = word in _TENS
    return str(total + int(current or "0")) if total else current


def mentioned_keys(text: str) -> list[str]:
    """Every letters-then-digits mention in ``text`` as a model key, in order."""
    digits = _SPOKEN.sub(lambda m: spoken_digits(m.group(0)), text)
    return [m.group(1).upper() + re.sub(r"\D", "", m.group(2)) for m in _MENTION.finditer(digits)]


def model_in(value: str) -> str:
    """The model-shaped part of ``value``: letters then digits ("XK-8800" of "XK-8800
    mirror"), or ``""`` when there is none ("10")."""
    found = re.search(r"(?<![A-Za-z])[A-Za-z]{1,5}[\-_]?\d[\dA-Za-z\-]*", value)
    return found.group(0).upper() if found else ""


def resolve_model(entity: str | None, text: str, known: Iterable[str]) -> str:
    """The known model the customer meant, or ``""``.

    ``entity`` is what NLU extracted (may be a fragment or a misreading), ``text`` the
    whole message; ``known`` the catalogue's and the customer's models.
    """
    by_key = {model_key(m): m for m in known if m}
    candidates = ([model_key(entity)] if entity else []) + mentioned_keys(entity or "") + mentioned_keys(text)
    for key in candidates:
        if key in by_key:
            return by_key[key]
    return ""
