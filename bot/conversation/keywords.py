"""Words that must work even when NLU is down or still loading.

Only whole messages that cannot mean anything else: asking for a person or for one's
account, and the greetings, thanks and goodbyes that open and close most conversations.
Everything else waits for NLU.
"""

from __future__ import annotations

import re

_END = r"[\s!！.。~～,，]*$"
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("request_human", re.compile(r"^\s*(转?人工(客服|服务)?|找人工|真人|客服|agent|human|a person|real person|operator)\W*\s*$", re.I)),
    ("greet", re.compile(r"^\s*(你好|您好|hi|hello|hey|早上好|下午好|晚上好|good (morning|afternoon|evening))" + _END, re.I)),
    ("thank", re.compile(r"^\s*(谢谢(你|您)?|多谢|非常感谢|thanks?( you)?( very much)?|many thanks)" + _END, re.I)),
    ("my_account", re.compile(
        r"^\s*(我的)?(账户|帐户|账号|帐号)\W*\s*$|^\s*(my )?account\W*\s*$|^\s*(open )?(the )?portal\W*\s*$", re.I
    )),
    ("goodbye", re.compile(r"^\s*(再见|拜拜|bye|goodbye|bye-bye|see you)" + _END, re.I)),
)


def keyword_intent(text: str) -> str:
    """The intent of a message that is one of the unambiguous keyword phrases, else ``""``."""
    for intent, pattern in _KEYWORDS:
        if pattern.match(text):
            return intent
    return ""
