"""Skill routing: ordered groups, first match wins, one error handler.

Shaped after python-telegram-bot's ``Application.process_update``: a skill says whether
it takes a turn, then handles it. Within a group the first skill that accepts wins;
groups are tried in order. A skill that raises gets the error reply and a log line with
the traceback, never a crashed worker.

When another skill takes a turn while a form is open (see :mod:`bot.conversation.forms`),
the form is set aside, and the customer is reminded of its open question once, after
that skill's answer, unless that skill has just asked a question of its own or handed
the conversation to a person.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from bot.logs import ref
from bot.messages import Article, InboundMessage, ReplyKind
from bot.templates import Templates

if TYPE_CHECKING:
    from bot.conversation.state import ConversationState
    from bot.nlu.client import ParseResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Turn:
    """One inbound message as a skill sees it."""

    message: InboundMessage
    language: str
    text: str  # typed text, or the transcript of a voice note
    # What NLU understood (intent + entities), when the worker ran it; skills that act on
    # intents read it, the others ignore it.
    nlu: ParseResult | None = None
    # The conversation's state; skills change it in place and the worker saves it after
    # the turn, under the conversation's lock.
    state: ConversationState | None = None

    @property
    def intent(self) -> str:
        return self.nlu.intent if self.nlu is not None else ""

    def entity(self, name: str) -> str | None:
        return self.nlu.entity(name) if self.nlu is not None else None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a skill wants said; the worker turns it into an OutboundMessage."""

    text: str = ""
    kind: ReplyKind = ReplyKind.TEXT
    image_path: str = ""
    articles: tuple[Article, ...] = field(default=())


class Skill(abc.ABC):
    name: ClassVar[str]
    # Whether answering a turn while another skill's form is open also reminds the
    # customer of that form's question (once). A courtesy ("thanks", "bye") is no change
    # of subject: a reminder after it reads as nagging, and the form stays open anyway.
    recalls_open_form: ClassVar[bool] = True

    @abc.abstractmethod
    def accepts(self, turn: Turn) -> bool:
        """Whether this skill takes the turn; must be cheap and side-effect free."""

    @abc.abstractmethod
    async def handle(self, turn: Turn) -> Sequence[Reply]:
        """Act on the turn and return the replies (possibly none)."""


class SkillRouter:
    """Hands a turn to the first skill that accepts it, group by group.

    ``without_nlu`` are the groups for a bot that has no NLU model yet (its first
    training runs in the background): while ``nlu_absent()`` says so, turns go to them,
    and the moment the model is there, to ``groups``, without a restart.
    """

    def __init__(
        self, groups: Sequence[Sequence[Skill]], templates: Templates, *,
        without_nlu: Sequence[Sequence[Skill]] = (), nlu_absent: Callable[[], bool] = lambda: False,
    ) -> None:
        self.groups: tuple[tuple[Skill, ...], ...] = tuple(tuple(g) for g in groups)
        self.without_nlu: tuple[tuple[Skill, ...], ...] = tuple(tuple(g) for g in without_nlu)
        self.nlu_absent = nlu_absent
        self.templates = templates

    async def route(self, turn: Turn) -> Sequence[Reply]:
        groups = self.without_nlu if self.without_nlu and self.nlu_absent() else self.groups
        for group in groups:
            for skill in group:
                if not skill.accepts(turn):
                    continue
                try:
                    replies = await skill.handle(turn)
                    return (*replies, *self._set_aside(turn, remind=skill.recalls_open_form))
                except Exception as exc:
                    # Type above DEBUG; the traceback (whose text may quote the customer) below.
                    log.error("skill %s failed on %s: %s", skill.name, ref(turn.message.key), type(exc).__name__)
                    log.debug("skill %s failure", skill.name, exc_info=True)
                    return (Reply(text=self.templates.render("error", turn.language)),)
        return ()

    def _set_aside(self, turn: Turn, *, remind: bool) -> tuple[Reply, ...]:
        state = turn.state
        form = state.form if state is not None else None
        if state is None or form is None or form.last_turn == turn.message.key:
            return ()  # no form, or the form took the turn itself
        form.paused = True
        # A skill's own open question (an awaited number, a choice of knowledge entries
        # offered) comes first: one question at a time.
        if not remind or form.reminded or not form.prompt or not state.bot_active or state.awaiting or state.offer:
            return ()
        form.reminded = True
        question = self.templates.render(form.prompt, turn.language, slots=form.slots)
        return (Reply(text=self.templates.render("form_reminder", turn.language, question=question.strip())),)
