"""Which language to answer in: Chinese unless the customer clearly writes otherwise."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")

SUPPORTED = ("zh", "en")
DEFAULT = "zh"


def detect(text: str, default: str = DEFAULT) -> str:
    """``zh`` if the text has any Han character, ``en`` if it has Latin words, else default.

    Mixed messages ("我的XK-8800坏了") count as Chinese: customers who type any Chinese
    read it more comfortably than English.
    """
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return default
