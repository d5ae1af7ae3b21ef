"""Hand-off reasons in the agent's language.

Skills record why a conversation waits for a human as an English sentence
(``HandoffState.handoff_reason``: it is also what the API and the logs show). The
console shows it in the agent's own language: each known sentence shape has its
Chinese form here, and an unknown one is shown as it was written rather than hidden.
"""

from __future__ import annotations

import re

# (English shape, Chinese form); named groups carry the variable parts over as written.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), zh)
    for pattern, zh in (
        (r"customer asked for a human", "客户要求转人工"),
        (r"understanding unavailable for too long", "语义理解服务长时间不可用"),
        (r"not understood (?P<n>\d+) times in a row", "连续 {n} 次未能理解"),
        (r"product complaint, case (?P<case>\S+)", "产品投诉，投诉单 {case}"),
        (r"renewal: no contract on file", "续约：未找到客户合同"),
        (r"renewal: unverified customer gives (?P<given>.*) \(CRM (?P<found>.*)\)", "续约：客户身份未核实，客户提供 {given}（CRM 记录 {found}）"),
        (r"renewal (?P<contract>\S+): (?P<action>[^ ]+) \((?P<rule>.*)\)", "续约 {contract}：{action}（规则 {rule}）"),
    )
)

# The renewal rules' blocking actions (skills.renewal.rules.ACTIONS).
_ACTIONS_ZH = {"legal_review": "需法务审核", "handoff": "需人工处理", "sales_todo": "需销售跟进", "notify_contact": "需通知联系人"}


def reason_in(reason: str, language: str) -> str:
    """``reason`` as an agent reading ``language`` sees it."""
    if language != "zh" or not reason:
        return reason
    for shape, zh in _SHAPES:
        found = shape.fullmatch(reason)
        if found:
            parts = found.groupdict()
            if "action" in parts:
                parts["action"] = _ACTIONS_ZH.get(parts["action"], parts["action"])
            return zh.format(**parts)
    return reason


def reason_words(reason: str) -> dict[str, str]:
    """Every language's form, for live rows that each open page shows in its own."""
    return {"zh": reason_in(reason, "zh"), "en": reason}
