"""The skill that moves a conversation to a human on request (complaints: skills.review_remediation.chat)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.dispatch import Reply, Skill, Turn
from bot.nlu.client import UNDERSTANDING_UNAVAILABLE
from bot.templates import Templates

class HumanRequestSkill(Skill):
    """``request_human`` ("转人工", "let me talk to a person") queues the conversation;
    so does a message that waited too long for NLU, with a reply that says why."""

    name = "request_human"

    def __init__(self, templates: Templates, handoff: Handoff) -> None:
        self.templates = templates
        self.handoff = handoff

    def accepts(self, turn: Turn) -> bool:
        return turn.intent in ("request_human", UNDERSTANDING_UNAVAILABLE)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        if turn.intent == UNDERSTANDING_UNAVAILABLE:
            await self.handoff.to_queue(turn.state, "understanding unavailable for too long")
            return (Reply(text=self.templates.render("handoff_nlu_down", turn.language)),)
        await self.handoff.to_queue(turn.state, "customer asked for a human")
        return (Reply(text=self.templates.render("handoff_queued", turn.language)),)
