"""Markdown and CSV become entries; a malformed entry is reported and the rest load."""

from __future__ import annotations

import pytest

from knowledge.entry import entry_from_json
from knowledge.errors import InvalidEntry, KnowledgeError
from knowledge.importer import parse_csv, parse_file, parse_markdown
from tests.knowledge.conftest import FIXTURES


def test_markdown_entries_with_continued_answers_and_validity() -> None:
    parsed = parse_file(FIXTURES / "warranty.md")
    by_id = {e.id: e for e in parsed.entries}
    assert list(by_id) == ["warranty-xk8800", "warranty-xk9900", "filter-clean", "invoice", "summer-sale"]
    e = by_id["warranty-xk8800"]
    assert e.title == "XK-8800 保修政策 / XK-8800 warranty"
    assert e.questions == ("XK-8800保修几年？", "How long is the XK-8800 warranty?")
    assert e.tags == ("XK-8800", "warranty") and e.owner == "售后服务部"
    # Continued lines join without a space after Chinese text, with one after English.
    assert e.answers["zh"].full.endswith("自安装验收之日起算。人为损坏不在保修范围内。")
    assert e.answers["en"].full.endswith("five years on the compressor, from installation. Misuse is not covered.")
    assert e.answers["en"].text("brief").startswith("The XK-8800 has a three-year warranty, five")
    assert by_id["warranty-xk9900"].answers["zh"].full == "XK-9900整机保修两年。"  # no full: the short one
    assert (by_id["summer-sale"].valid_from, by_id["summer-sale"].valid_to) == ("2026-06-01", "2026-08-31")
    assert parsed.errors == [("line 32 (broken-no-answer)", "answers: an object with zh and/or en answers is needed")]


def test_csv_rows_with_several_questions_and_a_bad_date() -> None:
    parsed = parse_file(FIXTURES / "hours.csv")
    assert [e.id for e in parsed.entries] == ["hours"]
    assert parsed.entries[0].questions == ("你们周末上班吗？", "What are your opening hours?")
    assert parsed.errors == [("row 3 (bad-date)", "valid_from: '2026-13-01' is not a date")]


def test_csv_without_the_needed_columns_is_refused() -> None:
    with pytest.raises(KnowledgeError, match="lacks id, questions"):
        parse_csv("title,zh\nx,y\n")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "a b", "questions": ["q"], "answers": {"zh": "答"}}, "id:"),
        ({"id": "a", "questions": [], "answers": {"zh": "答"}}, "questions: at least one"),
        ({"id": "a", "questions": ["q"], "answers": {"fr": "réponse"}}, "answers.fr: unknown language"),
        ({"id": "a", "questions": ["q\ud800"], "answers": {"zh": "答"}}, "not valid Unicode"),
        ({"id": "a", "questions": ["q"], "answers": {"zh": "答"}, "valid_from": "2027-01-01", "valid_to": "2026-01-01"}, "before valid_from"),
        ({"id": "a", "questions": "q", "answers": {"en": {"short": "", "full": ""}}}, "short or full is needed"),
    ],
)
def test_invalid_entries_say_which_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidEntry, match=message):
        entry_from_json(data)


def test_markdown_before_any_heading_is_ignored() -> None:
    parsed = parse_markdown("intro text\nq: stray\n\n## only | Only\nq: 问\nzh: 答\n")
    assert [e.id for e in parsed.entries] == ["only"] and not parsed.errors
