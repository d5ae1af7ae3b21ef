"""Clarifying questions: when the bot offers close entries, and how a reply picks one.

The decision runs on the real retrieval (the demo base, the real encoder and words);
the conversation through the WeChat webhook is in test_clarify_conversation.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Sequence

import pytest

from bot.conversation.state import ConversationState, FormState, KnowledgeOffer
from bot.messages import InboundMessage, MessageKind
from bot.routing import Reply, Skill, SkillRouter, Turn
from bot.templates import Templates
from knowledge.clarify import NEITHER, pick
from knowledge.encoder import UniversalSentenceEncoder
from knowledge.evaluation import DEMO_BASE, Labelled, Outcome, build_index, decide, score
from knowledge.importer import parse_file
from knowledge.lexical import Words
from knowledge.retrieval import Found, KnowledgeIndex, Tuning

DAY = dt.date(2026, 12, 7)


@pytest.fixture(scope="module")
def demo(encoder: UniversalSentenceEncoder, words: Words) -> KnowledgeIndex:
    return build_index(parse_file(DEMO_BASE).entries, encoder, words)


def _search(index: KnowledgeIndex, encoder: UniversalSentenceEncoder, text: str, tuning: Tuning = Tuning()) -> Found:
    return index.search(text, encoder.encode_blocking([text])[0], tuning, day=DAY)


def test_two_close_entries_are_offered_instead_of_the_fallback(demo: KnowledgeIndex, encoder: UniversalSentenceEncoder) -> None:
    found = _search(demo, encoder, "怎么申请发票")
    assert found.answer is None and found.lead < Tuning().margin  # not answered: too close to call
    assert [m.entry.id for m in found.choices] == ["invoice-request", "invoice-change"]
    assert [m.entry.label("zh") for m in found.choices] == ["开发票", "发票改抬头"]
    # With a wider margin accepted, the same question is answered and nothing is offered.
    sure = _search(demo, encoder, "怎么申请发票", Tuning(margin=0.05))
    assert sure.answer is not None and sure.answer.id == "invoice-request" and sure.choices == ()


def test_at_most_three_entries_are_offered_and_each_clears_the_floor(demo: KnowledgeIndex, encoder: UniversalSentenceEncoder) -> None:
    found = _search(demo, encoder, "发票能重开吗")
    assert [m.entry.id for m in found.choices] == ["invoice-change", "invoice-time", "invoice-request"]
    # A higher floor leaves out the entries below it, and one entry alone is no choice.
    fewer = _search(demo, encoder, "发票能重开吗", Tuning(offer_floor=0.81))
    assert [m.entry.id for m in fewer.choices] == ["invoice-change", "invoice-time"]
    assert _search(demo, encoder, "发票能重开吗", Tuning(offer_floor=0.85)).choices == ()


def test_no_choice_for_a_confident_answer_or_a_question_the_base_cannot_answer(
    demo: KnowledgeIndex, encoder: UniversalSentenceEncoder,
) -> None:
    answered = _search(demo, encoder, "how long is the warranty")
    assert answered.answer is not None and answered.choices == ()
    unknown = _search(demo, encoder, "今天天气怎么样")
    assert unknown.answer is None and unknown.choices == ()


@pytest.mark.parametrize(("said", "expected"), [
    ("2", 2), ("２", 2), (" 2。", 2), ("第二个", 2), ("选1", 1), ("第一条", 1), ("二", 2), ("the second one", 2),
    ("Option 1", 1), ("#2", 2), ("发票改抬头", 2), ("开发票", 1), ("改抬头", 2),
    ("都不是", NEITHER), ("两个都不是", NEITHER), ("Neither", NEITHER), ("none of them", NEITHER),
    ("3", None), ("发票", None), ("2号机器坏了，什么时候能来修", None), ("你好", None), ("", None),
])
def test_a_reply_picks_by_number_or_title_or_declines(said: str, expected: int | None) -> None:
    assert pick(said, ["开发票", "发票改抬头"]) == expected


def test_an_offer_survives_the_state_round_trip() -> None:
    state = ConversationState("wechat:demo:o1", "c1", "wechat", "demo", "o1")
    state.offer = KnowledgeOffer(["invoice-request", "invoice-change"], ["开发票", "发票改抬头"], "怎么申请发票", 1.5)
    again = ConversationState.from_dict(json.loads(state.to_json()))
    assert again.offer == state.offer
    assert ConversationState.from_dict(json.loads(ConversationState("c", "c", "w", "a", "s").to_json())).offer is None


def test_clarified_is_counted_beside_the_three_figures_without_changing_them() -> None:
    outcomes = [
        Outcome(Labelled("a?", "a"), None, "a", 0.9, 0.05, ("a", "b")),  # right entry offered
        Outcome(Labelled("c?", "c"), None, "a", 0.9, 0.05, ("a", "b")),  # offered, right one missing
        Outcome(Labelled("x?", None), None, "a", 0.7, 0.05, ("a", "b")),  # nothing to answer with
        Outcome(Labelled("b?", "b"), "b", "b", 0.9, 0.3),
    ]
    s = score(outcomes)
    assert (s.clarified, s.clarified_answerable, s.clarified_right) == (3, 2, 1)
    assert (s.correct, s.confident_wrong, s.silent_unanswerable) == (1, 0, 1)  # a clarification is no answer
    assert decide(outcomes[0], Tuning(margin=0.01)).offered == ()  # answered under another margin


def test_kb_test_reports_the_clarified_questions() -> None:
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "kb", "test", "--date", "2026-12-07", "--errors"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"^clarified +[0-9.]+% +\((\d+)/(\d+) questions .* for (\d+)/(\d+) answerable", proc.stdout, re.MULTILINE)
    assert m is not None, proc.stdout
    clarified, questions, right, answerable = map(int, m.groups())
    assert questions == 233 and 0 < right <= answerable <= clarified
    assert "'怎么申请发票': expected invoice-request, answered None (best invoice-request 1.105; offered invoice-request, invoice-change)" in proc.stdout


class _Offering(Skill):
    """Stands in for KnowledgeFirst's clarifying question."""

    name = "offering"

    def accepts(self, turn: Turn) -> bool:
        return True

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        turn.state.offer = KnowledgeOffer(["a", "b"], ["A", "B"], turn.text, turn.message.timestamp)
        return (Reply(text="which one?"),)


async def test_a_choice_offered_during_an_open_form_comes_without_the_form_reminder() -> None:
    """One question at a time: the form's reminder waits for a later turn."""
    templates = await asyncio.to_thread(Templates)  # reads the template files
    state = ConversationState("wechat:demo:o1", "c1", "wechat", "demo", "o1")
    state.form = FormState("repair_report", asking="address", prompt="error")  # any template
    message = InboundMessage("wechat", "demo", "o1", "wechat:demo:o1", MessageKind.TEXT, "m1", 1.0, text="怎么申请发票")
    replies = await SkillRouter([[_Offering()]], templates).route(Turn(message, "zh", message.text, state=state))
    assert [r.text for r in replies] == ["which one?"]
    assert state.form.paused and not state.form.reminded
