"""Whether a message asks something, in Chinese or English.

A form that asked for an address must not take "XK-8800保修几年？" as one, and a question
NLU is unsure of is worth a look in the knowledge base before a skill acts on a guess.
"""

from __future__ import annotations

import re

_MARK = re.compile(r"[?？]\s*$")
_ZH = re.compile(r"吗|呢|几|多少|多久|多长|什么|啥|怎么|怎样|如何|为什么|为啥|哪|是否|能不能|可不可以|有没有|是不是|会不会|要不要")
_EN = re.compile(
    r"^\s*(what|which|who|whom|whose|when|where|why|how|is|are|am|was|were|do|does|did|can|could|will|would|should|shall|may|has|have)\b",
    re.I,
)


def is_question(text: str) -> bool:
    """A question mark at the end, a Chinese question word, or an English question opening."""
    return bool(_MARK.search(text) or _ZH.search(text) or _EN.match(text))
