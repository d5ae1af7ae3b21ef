"""Skills that move a conversation to a human: on request, and for flagged complaints."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates

COMPLAINTS = frozenset({"complain_product"})


class HumanRequestSkill(Skill):
    """``request_human`` ("转人工", "let me talk to a person") queues the conversation."""

    name = "request_human"

    def __init__(self, templates: Templates, handoff: Handoff) -> None:
        self.templates = templates
        self.handoff = handoff

    def accepts(self, turn: Turn) -> bool:
        return turn.intent == "request_human"

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        await self.handoff.to_queue(turn.state, "customer asked for a human")
        return (Reply(text=self.templates.render("handoff_queued", turn.language)),)


class ComplaintSkill(Skill):
    """A product complaint is flagged for a person: apologise, then queue it."""

    name = "complaint"

    def __init__(self, templates: Templates, handoff: Handoff) -> None:
        self.templates = templates
        self.handoff = handoff

    def accepts(self, turn: Turn) -> bool:
        return turn.intent in COMPLAINTS

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        await self.handoff.to_queue(turn.state, f"flagged complaint ({turn.intent})")
        return (Reply(text=self.templates.render("complaint_queued", turn.language)),)
