"""The skills' actions among a conversation's messages, worded for the agent.

A skill names its actions, steps and facts with short codes (``ticket``, ``match``,
``days_late``); the page shows each in the agent's language where the console has a
word for it, and the code itself where it does not (a step a newer skill added)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from admin.i18n import ACTION_WORDS
from bot.customer_card import Facts, SkillAction
from webui.words import lookup


def word(key: str, language: str) -> str:
    return lookup(ACTION_WORDS, key, language) if key in ACTION_WORDS else key.split(":", 1)[-1]


def _facts(facts: Facts, language: str) -> list[tuple[str, str]]:
    # Statuses are codes too ("assigned"); amounts, names and numbers are shown as they are.
    return [(word("fact:" + k, language), word("value:" + v, language) if "value:" + v in ACTION_WORDS else v) for k, v in facts]


def action_view(action: SkillAction, language: str) -> dict[str, Any]:
    return {
        "entry": "action", "kind": action.kind, "title": word("action:" + action.kind, language), "ref": action.ref,
        "ts": action.at, "facts": _facts(action.facts, language),
        "steps": [{"at": s.at, "step": word("step:" + s.step, language), "facts": _facts(s.facts, language), "ok": s.ok} for s in action.steps],
    }


def timeline(messages: Sequence[dict[str, Any]], actions: Sequence[SkillAction], language: str) -> list[dict[str, Any]]:
    """Messages and actions in the order they happened (an action after the message that
    led to it, which it follows by the time the skill took)."""
    entries = [{**m, "entry": "message"} for m in messages] + [action_view(a, language) for a in actions]
    return sorted(entries, key=lambda e: (float(e["ts"] or 0.0), e["entry"] == "action"))
