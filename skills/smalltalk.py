"""Small talk, and what the bot says when it does not understand.

Greetings, thanks and goodbyes get a polite answer. Out-of-scope chatter gets a polite
redirect; when it goes on, the bot offers a human. When the bot fails to understand
``fallback_limit`` times in a row (default 2), the conversation goes to the human queue:
a customer should never be stuck with a bot that keeps guessing.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.conversation.handoff_reasons import HandoffCode
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates

SMALL_TALK = {"greet": "greet", "goodbye": "goodbye", "thank": "thank", "affirm": "affirm_idle", "deny": "deny_idle"}
NOT_UNDERSTOOD = frozenset({"nlu_fallback", ""})
REPEATED_FALLBACK = HandoffCode("repeated_fallback", "not understood {count} times in a row")


class SmallTalkSkill(Skill):
    name = "small_talk"
    recalls_open_form = False

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        return turn.intent in SMALL_TALK

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        turn.state.fallback_count = 0
        return (Reply(text=self.templates.render(SMALL_TALK[turn.intent], turn.language)),)


class OutOfScopeSkill(Skill):
    """Chit-chat, weather, jokes: a polite redirect; on repetition, the offer of a human."""

    name = "out_of_scope"

    def __init__(self, templates: Templates, *, offer_after: int = 2) -> None:
        self.templates = templates
        self.offer_after = offer_after

    def accepts(self, turn: Turn) -> bool:
        return turn.intent == "out_of_scope"

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        turn.state.small_talk_count += 1
        offer = turn.state.small_talk_count >= self.offer_after
        return (Reply(text=self.templates.render("out_of_scope", turn.language, offer_human=offer)),)


class FallbackSkill(Skill):
    """The last resort for text nobody took: ask to rephrase, then hand to a human."""

    name = "fallback"

    def __init__(self, templates: Templates, handoff: Handoff, *, limit: int = 2) -> None:
        self.templates = templates
        self.handoff = handoff
        self.limit = limit

    def accepts(self, turn: Turn) -> bool:
        return bool(turn.text)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None
        state.fallback_count += 1
        if state.fallback_count >= self.limit:
            await self.handoff.to_queue(state, REPEATED_FALLBACK(count=state.fallback_count))
            return (Reply(text=self.templates.render("fallback_handoff", turn.language)),)
        return (Reply(text=self.templates.render("fallback_rephrase", turn.language)),)
