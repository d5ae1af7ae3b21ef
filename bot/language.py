"""Which language to answer in: Chinese unless the customer clearly writes otherwise."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")
# Order, model and ticket numbers ("DD2024031500123", "XK-8800", "R20261207-98ABF8"): Latin
# letters, but no language; a Chinese customer answering with one is still Chinese.
_CODE = re.compile(r"\b[A-Za-z]*\d[\w-]*|\b[A-Za-z]+[-_]?\d[\w-]*")

SUPPORTED = ("zh", "en")
DEFAULT = "zh"


def detect(text: str, default: str = DEFAULT) -> str:
    """``zh`` if the text has any Han character, ``en`` if it has Latin words, else default.

    Mixed messages ("我的XK-8800坏了") count as Chinese: customers who type any Chinese
    read it more comfortably than English. Codes ("DD2024031500123") are no words: a
    message of codes alone keeps ``default`` (the conversation's language).
    """
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(_CODE.sub(" ", text)):
        return "en"
    return default
