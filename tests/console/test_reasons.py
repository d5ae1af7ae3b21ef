"""Hand-off reasons, recorded in English by the skills, shown in the agent's language."""

from __future__ import annotations

import pytest

from admin.reasons import reason_in, reason_words


@pytest.mark.parametrize(
    ("reason", "zh"),
    [
        ("customer asked for a human", "客户要求转人工"),
        ("understanding unavailable for too long", "语义理解服务长时间不可用"),
        ("not understood 3 times in a row", "连续 3 次未能理解"),
        ("product complaint, case CASE-20261207-298166", "产品投诉，投诉单 CASE-20261207-298166"),
        ("renewal: no contract on file", "续约：未找到客户合同"),
        ("renewal: unverified customer gives 13800000000 (CRM 138****0001)", "续约：客户身份未核实，客户提供 13800000000（CRM 记录 138****0001）"),
        ("renewal K-2025-001: legal_review (over CNY 1,000,000)", "续约 K-2025-001：需法务审核（规则 over CNY 1,000,000）"),
    ],
)
def test_each_reason_the_skills_write_has_its_chinese_form(reason: str, zh: str) -> None:
    assert reason_in(reason, "zh") == zh
    assert reason_in(reason, "en") == reason
    assert reason_words(reason) == {"zh": zh, "en": reason}


def test_an_unknown_reason_is_shown_as_written_not_hidden() -> None:
    assert reason_in("a reason added later", "zh") == "a reason added later"
    assert reason_in("", "zh") == ""
