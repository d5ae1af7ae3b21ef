"""Knowledge in the conversation: answer what no skill owns, and hear when it missed.

:class:`KnowledgeFirst` stands in front of a last-resort skill (the out-of-scope
redirect, the not-understood fallback), or of a business skill for the questions NLU
is unsure of ("XK-8800保修几年？" read as a repair report at 0.55 is a warranty question
first). On a turn it is meant for, it looks the question up; when an entry clears the threshold it answers with it, short or full by
the customer's detail preference, names the entry and offers a human. Otherwise the
wrapped skill answers as it always does, and the turn is kept for the trainer.

:class:`KnowledgeFirst` on a last-resort turn (``reason`` set) whose best entry clears
the threshold but leads the next ones by less than the margin asks instead which of the
close entries was meant, numbered; :class:`knowledge.clarify.ChosenAnswer` takes the
reply. Every other skill's turn drops the offer (:class:`Watched` wraps them all).

:class:`RejectedAnswer` takes "不是这个" / "that didn't help" right after a knowledge
answer: the rejection is kept for the trainer (with the entry and the question it
answered) and the customer is offered a human or a rephrase.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from bot.conversation.questions import is_question
from bot.conversation.state import ConversationState, KnowledgeOffer
from bot.logs import ref
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from knowledge.containment import KnowledgeAnswers
from knowledge.customer import CustomerFacts
from knowledge.encoder import reusable
from knowledge.entry import Entry
from knowledge.missed import MissedTurn, MissedTurns
from knowledge.retrieval import Retriever

log = logging.getLogger(__name__)

#: NLU outcomes the knowledge base may answer: nothing a business skill owns.
UNOWNED = frozenset({"out_of_scope", "nlu_fallback", ""})
#: How long after an answer "not this" still refers to it (and a choice offered stands).
REJECT_WINDOW_S = 15 * 60
#: The skill that takes the customer's pick from a choice offered (knowledge.clarify).
CHOICE = "knowledge_choice"

_REJECTION = re.compile(
    r"不是这个|不是我要的|不是我问的|答非所问|没用|没有用|没帮助|没帮上|不对|说的不对|不是这样"
    r"|(?:that|this|it)\s*(?:did(?:n'?t| not)|does(?:n'?t| not))\s*help|not (?:what i (?:asked|meant|wanted)|helpful|it)"
    r"|wrong answer|useless|that'?s not (?:it|right|what)",
    re.I,
)


def is_rejection(text: str) -> bool:
    return bool(_REJECTION.search(text)) and len(text) <= 60


def unowned(turn: Turn) -> bool:
    """No business skill owns what NLU understood."""
    return turn.intent in UNOWNED


def unsure_question(turn: Turn, below: float) -> bool:
    """A question whose intent NLU is unsure of, outside an open form (whose answers are
    often unsure and sometimes end in a question mark: "明天上午可以吗？")."""
    if turn.nlu is None or turn.intent in UNOWNED or turn.nlu.confidence >= below:
        return False
    return (turn.state is None or turn.state.form is None) and is_question(turn.text)


class KnowledgeFirst(Skill):
    """Answer from the knowledge base before ``otherwise`` gets the turn."""

    name = "knowledge"

    def __init__(
        self, otherwise: Skill, retriever: Retriever, customers: CustomerFacts, missed: MissedTurns, templates: Templates,
        answers: KnowledgeAnswers, *, reason: str, when: Callable[[Turn], bool] = unowned,
    ) -> None:
        """``when``: which of ``otherwise``'s turns are looked up; ``reason``: why a turn
        the base cannot answer is kept for the trainer ("": not kept here, ``otherwise``
        acts on it)."""
        self.otherwise = otherwise
        self.when = when
        self.answers = answers
        self.retriever = retriever
        self.customers = customers
        self.missed = missed
        self.templates = templates
        self.reason = reason

    def accepts(self, turn: Turn) -> bool:
        return self.otherwise.accepts(turn)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        if not turn.text.strip() or not self.when(turn) or state is None:
            return await self.otherwise.handle(turn)
        nlu = turn.nlu
        # The NLU encoded this same text already: its vector spares the second encoding,
        # the bulk of a knowledge turn's own time.
        vector = reusable(self.retriever.encoder, nlu.vector_encoder, nlu.vector) if nlu and nlu.text == turn.text else None
        found = await self.retriever.search(turn.text, products=lambda: self.customers.products(turn.message), vector=vector)
        entry = found.answer
        if entry is None:
            state.answered_entry, state.answered_question, state.answered_at = "", "", 0.0
            best = found.best
            if not self.reason:
                # A business skill's turn: it acts as before (no choice offered in its stead).
                return await self.otherwise.handle(turn)
            if found.choices:
                # Two or three entries are close: asking beats the fallback, and is no answer.
                choices = [m.entry for m in found.choices]
                titles = [e.label(turn.language) for e in choices]
                state.offer = KnowledgeOffer([e.id for e in choices], titles, turn.text, turn.message.timestamp)
                log.info("knowledge choice of %d entries (best %.3f, lead %.3f) on %s",
                         len(choices), found.choices[0].score, found.lead, ref(turn.message.key))
                return (Reply(text=self.templates.render("knowledge_choice", turn.language, titles=titles)),)
            await self.missed.add(MissedTurn(
                reason=self.reason, text=turn.text, language=turn.language, conversation=state.conversation,
                intent=turn.intent, confidence=turn.nlu.confidence if turn.nlu else 0.0,
                best=best.entry.id if best else "", score=best.score if best else 0.0,
            ))
            return await self.otherwise.handle(turn)
        log.info("knowledge answer %s v%d (score %.3f) on %s", entry.id, entry.version, found.matches[0].score, ref(turn.message.key))
        return await answer_with(entry, turn, state, self.answers, self.customers, self.templates)


async def answer_with(
    entry: Entry, turn: Turn, state: ConversationState, answers: KnowledgeAnswers, customers: CustomerFacts,
    templates: Templates, *, question: str = "",
) -> Sequence[Reply]:
    """``entry``'s answer as a knowledge answer: counted, remembered for "不是这个"
    (against ``question``, by default the turn's text), short or full by the customer's
    detail preference, with the entry named and a human offered."""
    state.fallback_count = 0
    state.small_talk_count = 0
    state.answered_entry, state.answered_question, state.answered_at = entry.id, question or turn.text, turn.message.timestamp
    await answers.add(entry=entry.id, conversation=state.conversation)
    answer = entry.answer(turn.language)
    # The customer's detail preference is read only when it makes a difference.
    text = answer.short if answer.short == answer.full else answer.text(await customers.detail(turn.message))
    return (Reply(text=templates.render("knowledge_answer", turn.language, answer=text, source=entry.label(turn.language))),)


class RejectedAnswer(Skill):
    """"Not this" right after a knowledge answer: kept for the trainer, a human offered."""

    name = "knowledge_rejected"

    def __init__(self, missed: MissedTurns, templates: Templates) -> None:
        self.missed = missed
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        state = turn.state
        if state is None or not state.answered_entry or not is_rejection(turn.text):
            return False
        return 0 <= turn.message.timestamp - state.answered_at <= REJECT_WINDOW_S

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None
        entry, question = state.answered_entry, state.answered_question
        state.answered_entry, state.answered_question, state.answered_at = "", "", 0.0
        await self.missed.add(MissedTurn(
            reason="knowledge_rejected", text=question, language=turn.language, conversation=state.conversation,
            intent=turn.intent, entry=entry, rejection=turn.text,
        ))
        return (Reply(text=self.templates.render("knowledge_rejected", turn.language)),)


class Watched(Skill):
    """``skill`` as it is, with the turns it handles poorly kept for the trainer: an
    intent NLU was unsure of (below ``low_confidence``), and a turn that ends in the
    human queue (with the hand-off's reason)."""

    def __init__(self, skill: Skill, missed: MissedTurns, *, low_confidence: float) -> None:
        self.skill = skill
        self.name = skill.name  # type: ignore[misc]  # the wrapped skill's name in logs
        self.recalls_open_form = skill.recalls_open_form  # type: ignore[misc]  # and its manners
        self.missed = missed
        self.low_confidence = low_confidence

    def accepts(self, turn: Turn) -> bool:
        return self.skill.accepts(turn)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        was_bot = state is not None and state.bot_active
        if state is not None and self.skill.name != CHOICE:
            state.offer = None  # a choice offered stands for the next turn only
        replies = await self.skill.handle(turn)
        if state is None or not turn.text.strip():
            return replies
        confidence = turn.nlu.confidence if turn.nlu else 0.0
        reason = ""
        if was_bot and not state.bot_active:
            reason = f"handoff:{state.handoff_code or state.handoff_reason or 'unspecified'}"
        elif turn.nlu is not None and turn.intent not in UNOWNED and confidence < self.low_confidence:
            reason = "low_confidence"
        if reason:
            await self.missed.add(MissedTurn(
                reason=reason, text=turn.text, language=turn.language, conversation=state.conversation,
                intent=turn.intent, confidence=confidence,
            ))
        return replies
