"""The customer's reply to a clarifying question ("您是想问哪一个？1. 开发票 2. 发票重开/修改").

:class:`knowledge.skill.KnowledgeFirst` offers two or three close entries, numbered, and
keeps the offer in the conversation state (it survives a worker restart). On the next
turn :class:`ChosenAnswer` takes a pick, by number ("2", "第二个", "the second one") or by
a title shown, and answers with that entry exactly as a knowledge answer; "都不是" /
"neither" is a rejected knowledge answer, kept for the trainer like "不是这个" (with the
best entry offered), and the customer is asked to rephrase or offered a human, as the
fallback does. Anything else is a new turn, and the offer lapses.

A pick is read only from short replies that are nothing but a pick: "2号机器坏了" is not
one, and goes on as a new turn.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

from bot.logs import ref
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from knowledge.containment import KnowledgeAnswers
from knowledge.customer import CustomerFacts
from knowledge.entry import Entry
from knowledge.errors import UnknownEntry
from knowledge.missed import MissedTurn, MissedTurns
from knowledge.skill import CHOICE, REJECT_WINDOW_S, answer_with

log = logging.getLogger(__name__)

#: A reply longer than this is a new message, not a pick.
MAX_PICK_CHARS = 30
NEITHER = -1

_NUMBERS = {"1": 1, "2": 2, "3": 3, "一": 1, "二": 2, "两": 2, "三": 3, "first": 1, "second": 2, "third": 3,
            "one": 1, "two": 2, "three": 3}
_PICK = re.compile(
    r"(?:我)?(?:选|选择|要|是|问|想问)?(?:第)?(?P<zh>[123一二两三])(?:个|条|项|号)?(?:吧|的|问题)?"
    r"|(?:the\s+|option\s+|number\s+|no\.?\s*|#)?(?P<en>[123]|first|second|third|one|two|three)(?:\s+one)?(?:\s+please)?",
    re.I,
)
_NEITHER = re.compile(
    r"都不是|都不对|都没有|两个都不是|三个都不是|都不|以上都不是|不是这些|没有我要的"
    r"|neither(?:\s+of\s+(?:them|these))?|none(?:\s+of\s+(?:them|these|those))?|not\s+(?:any|either)(?:\s+of\s+(?:them|these))?",
    re.I,
)
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def normalised(text: str) -> str:
    """Full-width digits and letters as ASCII, lower case, no surrounding punctuation."""
    return _TRIM.sub("", unicodedata.normalize("NFKC", text).casefold())


def pick(text: str, titles: Sequence[str]) -> int | None:
    """The 1-based choice ``text`` makes among ``titles``, :data:`NEITHER`, or None when
    it is no pick (a title matches only when it alone does)."""
    said = normalised(text)
    if not said or len(said) > MAX_PICK_CHARS:
        return None
    if _NEITHER.fullmatch(said):
        return NEITHER
    m = _PICK.fullmatch(said)
    if m:
        number = _NUMBERS[(m.group("zh") or m.group("en")).lower()]
        return number if number <= len(titles) else None
    shown = [normalised(t) for t in titles]
    exact = [i for i, t in enumerate(shown, 1) if t and t == said]
    if len(exact) == 1:
        return exact[0]
    partial = [i for i, t in enumerate(shown, 1) if t and len(said) >= 2 and (said in t or t in said)]
    return partial[0] if len(partial) == 1 else None


class Entries(Protocol):
    async def get(self, entry_id: str) -> Entry:
        """The entry as it is now; :class:`UnknownEntry` when it was deleted."""


class ChosenAnswer(Skill):
    """The pick from the choice offered on the last turn."""

    name = CHOICE

    def __init__(
        self, entries: Entries, answers: KnowledgeAnswers, customers: CustomerFacts, missed: MissedTurns, templates: Templates,
    ) -> None:
        self.entries = entries
        self.answers = answers
        self.customers = customers
        self.missed = missed
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        state = turn.state
        offer = state.offer if state is not None else None
        if state is None or offer is None or not state.bot_active:
            return False
        if not 0 <= turn.message.timestamp - offer.at <= REJECT_WINDOW_S:
            return False
        return pick(turn.text, offer.titles) is not None

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None and state.offer is not None
        offer, state.offer = state.offer, None
        number = pick(turn.text, offer.titles)
        assert number is not None
        if number == NEITHER:
            await self.missed.add(MissedTurn(
                reason="knowledge_rejected", text=offer.question, language=turn.language, conversation=state.conversation,
                intent=turn.intent, entry=offer.entries[0], best=offer.entries[0], rejection=turn.text,
            ))
            log.info("knowledge choice of %d entries declined on %s", len(offer.entries), ref(turn.message.key))
            return (Reply(text=self.templates.render("knowledge_choice_declined", turn.language)),)
        try:
            entry = await self.entries.get(offer.entries[number - 1])
        except UnknownEntry:  # deleted since it was offered
            log.info("knowledge choice %d on %s names a deleted entry", number, ref(turn.message.key))
            return (Reply(text=self.templates.render("knowledge_choice_declined", turn.language)),)
        log.info("knowledge answer %s v%d (choice %d of %d) on %s", entry.id, entry.version, number, len(offer.entries),
                 ref(turn.message.key))
        return await answer_with(entry, turn, state, self.answers, self.customers, self.templates, question=offer.question)
