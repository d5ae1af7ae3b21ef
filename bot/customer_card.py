"""What each package knows about a customer, for the agent's customer card.

A package that holds facts about customers (the skills: tickets and contracts; the
preferences: channels and quiet hours) exports a function returning
:class:`CardLine` values; the composition root joins them into one
:data:`CustomerCard` and hands it to the console, which only renders lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CardSubject:
    """Who the card is about: the chat identity and the address it wrote from."""

    customer: str  # channel:account:sender
    channel: str
    account: str
    sender: str


@dataclass(frozen=True, slots=True)
class CardLine:
    section: str  # tickets, contracts, preferences: a heading the console translates
    text: str  # what the agent reads (facts, not customer-written text)
    at: float | None = None  # a time the console shows in the agent's own zone


CardSource = Callable[[CardSubject], Awaitable[Sequence[CardLine]]]
CustomerCard = CardSource


def join_card(sources: Sequence[CardSource]) -> CustomerCard:
    """One card from several sources, read side by side; a failing source is left out
    (and logged) so that the rest of the card still shows."""

    async def card(subject: CardSubject) -> Sequence[CardLine]:
        found = await asyncio.gather(*(source(subject) for source in sources), return_exceptions=True)
        lines: list[CardLine] = []
        for source, result in zip(sources, found):
            if isinstance(result, BaseException):
                log.warning("customer card: %s failed (%s)", getattr(source, "__qualname__", source), result)
                continue
            lines.extend(result)
        return lines

    return card
