"""The labelled-set figures: threshold and margin chosen under a budget, and held out."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from knowledge.errors import KnowledgeError
from knowledge.evaluation import Labelled, Outcome, choose, cross_validate, decide, score
from knowledge.retrieval import Tuning


def _outcome(entry: str | None, best: str, value: float, lead: float = 1.0) -> Outcome:
    return Outcome(Labelled(f"q-{entry}-{value}", entry), None, best, value, lead)


def test_decide_answers_only_a_best_entry_that_clears_threshold_and_margin() -> None:
    o = _outcome("a", "a", 0.7, lead=0.1)
    assert decide(o, Tuning(threshold=0.6, margin=0.1)).answered == "a"
    assert decide(o, Tuning(threshold=0.72, margin=0.1)).answered is None
    assert decide(o, Tuning(threshold=0.6, margin=0.12)).answered is None


def test_held_out_folds_show_a_wrong_answer_the_in_sample_choice_hides() -> None:
    """One wrong answer scoring below every right one: chosen with it in view, the
    threshold rises above it; chosen without it (its fold left out), the lowest
    threshold answers as many right and so lets it through. The held-out figure
    must show that, once per shuffle."""
    outcomes = [_outcome(f"e{i}", f"e{i}", 0.60 + i / 100) for i in range(20)]
    outcomes.append(_outcome("right", "wrong", 0.55))
    in_sample = score([decide(o, choose(outcomes, Tuning(), budget=0.0)) for o in outcomes])
    assert (in_sample.correct, in_sample.confident_wrong) == (20, 0)

    cv = cross_validate(outcomes, Tuning(), folds=5, repeats=3, budget=0.0)
    assert cv.held_out.questions == 3 * len(outcomes)  # every question scored once per shuffle
    assert cv.held_out.confident_wrong == 3
    assert len(cv.chosen) == 15 and min(t.threshold for t in cv.chosen) < 0.55


def test_a_choice_keeps_the_no_answer_floor() -> None:
    outcomes = [_outcome(f"e{i}", f"e{i}", 0.70) for i in range(5)]
    outcomes += [_outcome(None, "e0", 0.65) for _ in range(5)]  # no answer in the base, scoring high
    chosen = choose(outcomes, Tuning(), budget=1.0)  # wrong answers allowed, silence on these is not optional
    s = score([decide(o, chosen) for o in outcomes])
    assert s.no_answer_recall >= 0.9 and s.correct == 5


def test_folds_must_fit_the_set() -> None:
    with pytest.raises(KnowledgeError, match="folds"):
        cross_validate([_outcome("a", "a", 0.7)], Tuning(), folds=2)


def test_kb_test_prints_in_sample_and_held_out_figures_for_the_demo_base() -> None:
    """The shipped settings on the shipped sets, through the command a trainer runs."""
    def kb_test(*extra: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "bot.cli", "kb", "test", "--date", "2026-12-07", *extra],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def figure(text: str, name: str, nth: int = 0) -> float:
        return float(re.findall(rf"^{name} +([0-9.]+)%", text, re.MULTILINE)[nth]) / 100

    labelled = kb_test("--folds", "5")
    assert "held-out folds (5 folds x 3 shuffles" in labelled
    assert figure(labelled, "confident wrong") < 0.02 and figure(labelled, "no-answer recall") == 1.0
    assert figure(labelled, "confident wrong", 1) < 0.02  # on the folds left out
    heldout = kb_test("--set", "knowledge/data/heldout.yml")
    assert figure(heldout, "confident wrong") < 0.02 and figure(heldout, "answer accuracy") > 0.75
