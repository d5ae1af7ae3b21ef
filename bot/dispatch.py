"""Skill dispatch: ordered groups, first match wins, one error handler.

Shaped after python-telegram-bot's ``Application.process_update``: a skill says whether
it takes a turn, then handles it. Within a group the first skill that accepts wins;
groups are tried in order. A skill that raises gets the error reply and a log line with
the traceback, never a crashed worker.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from bot.messages import Article, InboundMessage, ReplyKind
from bot.templates import Templates

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Turn:
    """One inbound message as a skill sees it."""

    message: InboundMessage
    language: str
    text: str  # typed text, or the transcript of a voice note


@dataclass(frozen=True, slots=True)
class Reply:
    """What a skill wants said; the worker turns it into an OutboundMessage."""

    text: str = ""
    kind: ReplyKind = ReplyKind.TEXT
    image_path: str = ""
    articles: tuple[Article, ...] = field(default=())


class Skill(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def accepts(self, turn: Turn) -> bool:
        """Whether this skill takes the turn; must be cheap and side-effect free."""

    @abc.abstractmethod
    async def handle(self, turn: Turn) -> Sequence[Reply]:
        """Act on the turn and return the replies (possibly none)."""


class Dispatcher:
    def __init__(self, groups: Sequence[Sequence[Skill]], templates: Templates) -> None:
        self.groups = groups
        self.templates = templates

    async def dispatch(self, turn: Turn) -> Sequence[Reply]:
        for group in self.groups:
            for skill in group:
                if not skill.accepts(turn):
                    continue
                try:
                    return await skill.handle(turn)
                except Exception:
                    log.exception("skill %s failed on %s", skill.name, turn.message.key)
                    return (Reply(text=self.templates.render("error", turn.language)),)
        return ()
