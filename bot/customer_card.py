"""What each package knows about a customer, for the agent's conversation page.

A package that holds facts about customers (the skills: tickets and contracts; the
preferences: channels and quiet hours) exports a function returning
:class:`CardLine` values; the composition root joins them into one
:data:`CustomerCard` and hands it to the console, which only renders lines. Likewise
what the skills did in a conversation (a ticket and its timeline, a renewal quote, a
delivery remedy) comes as :class:`SkillAction` values the page shows among the messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CardSubject:
    """Who the card is about: the chat identity and the address it wrote from."""

    customer: str  # channel:account:sender
    channel: str
    account: str
    sender: str
    conversation: str = ""


@dataclass(frozen=True, slots=True)
class CardLine:
    section: str  # tickets, contracts, preferences: a heading the console translates
    text: str  # what the agent reads (facts, not customer-written text)
    at: float | None = None  # a time the console shows in the agent's own zone


Facts = tuple[tuple[str, str], ...]  # (what, value): the console words "what" in the agent's language


@dataclass(frozen=True, slots=True)
class ActionStep:
    at: float
    step: str  # e.g. opened, match, status, todo
    facts: Facts = ()
    ok: bool = True


@dataclass(frozen=True, slots=True)
class SkillAction:
    """Something a skill did in a conversation, shown where it happened among the messages."""

    kind: str  # ticket, renewal, remedy, case: a heading the console translates
    ref: str  # what an agent quotes: a ticket number, a contract, an order, a case id
    at: float  # when it was taken
    facts: Facts = ()  # status, amounts, coupon...: never customer-written text
    steps: tuple[ActionStep, ...] = ()


CardSource = Callable[[CardSubject], Awaitable[Sequence[CardLine]]]
CustomerCard = CardSource
ActionSource = Callable[[CardSubject], Awaitable[Sequence[SkillAction]]]
ConversationActions = ActionSource

T = TypeVar("T")


def join_sources(sources: Sequence[Callable[[CardSubject], Awaitable[Sequence[T]]]]) -> Callable[[CardSubject], Awaitable[list[T]]]:
    """One source from several, read side by side; a failing source is left out (and
    logged) so that what the others know still shows."""

    async def joined(subject: CardSubject) -> list[T]:
        found = await asyncio.gather(*(source(subject) for source in sources), return_exceptions=True)
        items: list[T] = []
        for source, result in zip(sources, found):
            if isinstance(result, BaseException):
                log.warning("customer card: %s failed (%s)", getattr(source, "__qualname__", source), result)
                continue
            items.extend(result)
        return items

    return joined

