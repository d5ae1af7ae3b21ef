"""The knowledge parts wired together, for the composition root.

``build_knowledge`` takes the clients it needs and returns :class:`Knowledge`; the root
keeps it under :data:`KNOWLEDGE` (the API reads it there) and asks it for the chat
skills with :meth:`Knowledge.skills`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.routing import Skill, Turn
from bot.templates import Templates
from bot.conversation.handoff import Handoff
from bot.store import MessageStore
from knowledge.clarify import ChosenAnswer
from knowledge.containment import UNANSWERED, KnowledgeAnswers, Sources
from knowledge.customer import CustomerFacts
from knowledge.encoder import UniversalSentenceEncoder
from knowledge.evaluation import DEMO_BASE
from knowledge.export import FILE_NAME
from knowledge.exported import ExportedFile
from knowledge.importer import parse_file
from knowledge.label_trail import LabelTrail
from knowledge.labels import TrainerLabels
from knowledge.lexical import Words
from knowledge.missed import MissedTurns
from knowledge.news import TrainerNews
from knowledge.retrieval import Retriever, Tuning
from knowledge.review import LabelReview
from knowledge.skill import KnowledgeFirst, RejectedAnswer, Watched, unowned, unsure_question
from knowledge.store import ImportReport, KnowledgeStore
from knowledge.transcripts import CorrectedTranscripts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Knowledge:
    store: KnowledgeStore
    retriever: Retriever
    missed: MissedTurns
    customers: CustomerFacts
    encoder: UniversalSentenceEncoder
    labels: TrainerLabels
    answers: KnowledgeAnswers
    review: LabelReview
    trail: LabelTrail
    transcripts: CorrectedTranscripts
    # NLU confidence below which a turn a skill acted on is kept for the trainer.
    low_confidence: float = 0.6

    def answering_first(
        self, otherwise: Skill, templates: Templates, *, reason: str, when: Callable[[Turn], bool] = unowned
    ) -> Skill:
        """``otherwise`` (a last-resort skill), with the knowledge base asked first on the
        turns ``when`` picks (by default those no business skill owns)."""
        return KnowledgeFirst(
            otherwise, self.retriever, self.customers, self.missed, templates, self.answers, reason=reason, when=when
        )

    def answering_unsure_questions(self, skill: Skill, templates: Templates) -> Skill:
        """``skill``, with the questions NLU is unsure of (below ``low_confidence``)
        looked up first; the ones the base cannot answer go to ``skill`` as before."""
        below = self.low_confidence
        return self.answering_first(skill, templates, reason="", when=lambda turn: unsure_question(turn, below))

    def watched(self, skill: Skill) -> Skill:
        """``skill``, with its unsure and handed-off turns kept for the trainer."""
        return Watched(skill, self.missed, low_confidence=self.low_confidence)

    def rejection(self, templates: Templates) -> Skill:
        return RejectedAnswer(self.missed, templates)

    def choice(self, templates: Templates) -> Skill:
        """Takes the customer's pick from a clarifying question (first, after the queue)."""
        return ChosenAnswer(self.store, self.answers, self.customers, self.missed, templates)

    async def close(self) -> None:
        await self.retriever.close()
        self.encoder.close()


KNOWLEDGE = web.AppKey("knowledge", Knowledge)


def tuning_from(section: dict[str, Any]) -> Tuning:
    defaults = Tuning()
    return Tuning(
        threshold=float(section.get("threshold", defaults.threshold)),
        margin=float(section.get("margin", defaults.margin)),
        lexical_weight=float(section.get("lexical_weight", defaults.lexical_weight)),
        product_boost=float(section.get("product_boost", defaults.product_boost)),
        offer_floor=float(section.get("offer_floor", defaults.offer_floor)),
    )


async def build_knowledge(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, customers: CustomerFacts, *, tuning: Tuning = Tuning(),
    user_dict: Path | None = None, low_confidence: float = 0.6, nlu_data: Path | None = None,
) -> Knowledge:
    """Stores with their indexes, the encoder and jieba loaded (off the loop). ``nlu_data``
    is the NLU training data folder the reviewed export writes into (a revert edits it)."""
    encoder = UniversalSentenceEncoder()
    words = Words(user_dict)
    store = KnowledgeStore(db, redis, encoder)
    news = TrainerNews(redis)
    missed = MissedTurns(db, news)
    await store.ensure_indexes()
    labels = TrainerLabels(db)
    answers = KnowledgeAnswers(db)
    trail = LabelTrail(db)
    transcripts = CorrectedTranscripts(db, news)
    for owner in (missed, labels, answers, trail, transcripts):
        await owner.ensure_indexes()
    await encoder.warm()
    await encoder.run(words.load)
    return Knowledge(
        store, Retriever(store, encoder, words, tuning), missed, customers, encoder, labels, answers,
        LabelReview(store, labels, missed, trail, ExportedFile(nlu_data / FILE_NAME) if nlu_data is not None else None, news),
        trail, transcripts, low_confidence,
    )


def containment_sources(kb: Knowledge, messages: MessageStore, handoff: Handoff) -> Sources:
    async def unanswered(start: float, end: float) -> int:
        return await kb.missed.count_between(start, end, UNANSWERED)

    return Sources(messages.active_conversations, handoff.queued_between, kb.answers.count_between, unanswered)


async def load_demo(store: KnowledgeStore, path: Path = DEMO_BASE) -> ImportReport:
    """The demo knowledge base (simulator mode); unchanged entries are left as they are."""
    parsed = await asyncio.to_thread(parse_file, path)
    report = await store.save_many(parsed.entries, actor="demo")
    log.info("demo knowledge base: %d created, %d changed, %d unchanged", report.created, report.changed, report.unchanged)
    return report
