"""Words that must work even when NLU is down: asking for a person, asking for one's account."""

from __future__ import annotations

import re

_HUMAN = re.compile(r"^\s*(转?人工(客服|服务)?|找人工|真人|客服|agent|human|a person|real person|operator)\W*\s*$", re.I)
_ACCOUNT = re.compile(r"^\s*(我的)?(账户|帐户|账号|帐号)\W*\s*$|^\s*(my )?account\W*\s*$|^\s*(open )?(the )?portal\W*\s*$", re.I)


def keyword_intent(text: str) -> str:
    """``request_human`` for the short, unambiguous ways of asking for a person,
    ``my_account`` for "我的账户" / "my account", else ``""``."""
    if _HUMAN.match(text):
        return "request_human"
    if _ACCOUNT.match(text):
        return "my_account"
    return ""
