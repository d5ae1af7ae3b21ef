"""A person on request, and what the bot still does while the customer waits for one.

Complaints that go to a person: :mod:`skills.review_remediation.chat`.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.conversation.handoff_reasons import HandoffCode
from bot.conversation.state import QUEUE
from bot.nlu.client import UNDERSTANDING_UNAVAILABLE
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates

HUMAN_REQUESTED = HandoffCode("human_requested", "customer asked for a human")
NLU_UNAVAILABLE = HandoffCode("nlu_unavailable", "understanding unavailable for too long")


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
            await self.handoff.to_queue(turn.state, NLU_UNAVAILABLE())
            return (Reply(text=self.templates.render("handoff_nlu_down", turn.language)),)
        await self.handoff.to_queue(turn.state, HUMAN_REQUESTED())
        return (Reply(text=self.templates.render("handoff_queued", turn.language)),)


#: What the bot keeps answering while a conversation waits for a person: the customer's
#: own settings and data, and where their repair stands. Anything else (a greeting too:
#: "还在吗？" asks after the person) waits for the agent.
WHILE_WAITING = frozenset(
    {"ask_preference", "set_preference", "export_my_data", "delete_my_data", "affirm", "deny", "ask_repair_status",
     "thank", "goodbye"}
)


class WhileWaitingSkill(Skill):
    """In the queue for a person: the first message the bot may not answer gets, once,
    "a colleague is coming" with the place in the queue and the expected wait; later
    ones are kept for the agent. Answerable ones go on to their skills (first group)."""

    name = "while_waiting"

    def __init__(self, templates: Templates, handoff: Handoff, *, minutes_each: float = 4.0) -> None:
        self.templates = templates
        self.handoff = handoff
        self.minutes_each = minutes_each  # one waiting conversation's share of an agent's time

    def accepts(self, turn: Turn) -> bool:
        state = turn.state
        return state is not None and state.owner == QUEUE and turn.intent not in WHILE_WAITING

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        if turn.state.told_waiting:
            return ()
        turn.state.told_waiting = True
        ahead = await self.handoff.position(turn.state.conversation)
        minutes = max(1, round((ahead + 1) * self.minutes_each))
        return (Reply(text=self.templates.render("waiting_for_agent", turn.language, ahead=ahead, minutes=minutes)),)
