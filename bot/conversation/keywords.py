"""Words that must work even when NLU is down: asking for a person."""

from __future__ import annotations

import re

_HUMAN = re.compile(r"^\s*(转?人工(客服|服务)?|找人工|真人|客服|agent|human|a person|real person|operator)\W*\s*$", re.I)


def keyword_intent(text: str) -> str:
    """``request_human`` for the short, unambiguous ways of asking for a person, else ``""``."""
    return "request_human" if _HUMAN.match(text) else ""
