"""Hand-off reasons: the skills record a code with parameters (and an English sentence);
the console words every code in both languages. The codes are read from the source, so
a code a skill adds without words in the console fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from admin.i18n import TEXT
from admin.reasons import reason_in, reason_key, reason_words
from bot.conversation.handoff_reasons import HandoffCode, HandoffReason
from skills.renewal.rules import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
# Where hand-offs are made: the skills, and the bot and knowledge around them.
SOURCES = ("skills", "bot", "knowledge")


def declared_codes() -> list[HandoffCode]:
    """Every ``HandoffCode("code", "english")`` written in the source."""
    found: list[HandoffCode] = []
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "HandoffCode":
                    code, english = (ast.literal_eval(a) for a in node.args)
                    found.append(HandoffCode(code, english))
    return found


CODES = declared_codes()


def sample(code: HandoffCode) -> HandoffReason:
    return code(**{name: f"<{name}-1>" for name in code.fields})


def test_the_skills_declare_their_codes_once() -> None:
    assert len(CODES) >= 8, [c.code for c in CODES]
    assert len({c.code for c in CODES}) == len(CODES), "one code, one declaration"


@pytest.mark.parametrize("code", CODES, ids=lambda c: c.code)
def test_every_code_has_words_in_both_languages_that_carry_its_parameters(code: HandoffCode) -> None:
    assert reason_key(code.code) in TEXT, f"admin.i18n has no words for the hand-off reason {code.code}"
    reason = sample(code)
    words = reason_words(reason.text, reason.code, reason.params)
    zh, en = words["zh"], words["en"]
    assert zh != en and zh != reason.text, "the console's own words, not the sentence read back"
    for value in reason.params.values():
        assert value in zh and value in en
    assert "{" not in zh + en


def test_a_blocking_renewal_action_is_worded_too() -> None:
    [review] = [c for c in CODES if "action" in c.fields]
    for action in ACTIONS:
        reason = review(contract="K-2025-001", action=action, rule="over CNY 1,000,000")
        zh = reason_in(reason.text, reason.code, reason.params, "zh")
        assert action not in zh and "K-2025-001" in zh and "over CNY 1,000,000" in zh, zh


def test_the_english_sentence_stays_what_the_api_and_logs_showed() -> None:
    by_code = {c.code: c for c in CODES}
    assert by_code["repeated_fallback"](count=3).text == "not understood 3 times in a row"
    complaint = by_code["product_complaint"](case="CASE-20261207-298166")
    assert (complaint.code, complaint.params, complaint.text) == (
        "product_complaint", {"case": "CASE-20261207-298166"}, "product complaint, case CASE-20261207-298166",
    )
    assert reason_in(complaint.text, complaint.code, complaint.params, "zh") == "产品投诉，投诉单 CASE-20261207-298166"
    with pytest.raises(TypeError):
        by_code["product_complaint"](order="X")  # a parameter the sentence does not have


def test_a_record_without_a_code_or_with_an_unknown_one_is_shown_as_written() -> None:
    assert reason_in("customer asked for a human", "", {}, "zh") == "customer asked for a human"
    assert reason_words("a reason added later", "added_later", {}) == {"zh": "a reason added later", "en": "a reason added later"}
    assert reason_in("", "", {}, "zh") == ""
    # Parameters that do not fit the words (a record from another version): the sentence.
    assert reason_in("not understood 3 times in a row", "repeated_fallback", {}, "zh") == "not understood 3 times in a row"
