"""The knowledge parts wired together, for the composition root.

``build_knowledge`` takes the clients it needs and returns :class:`Knowledge`; the root
keeps it under :data:`KNOWLEDGE` (the API reads it there) and asks it for the chat
skills with :meth:`Knowledge.skills`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.routing import Skill
from bot.templates import Templates
from knowledge.customer import CustomerFacts
from knowledge.encoder import UniversalSentenceEncoder
from knowledge.evaluation import DEMO_BASE
from knowledge.importer import parse_file
from knowledge.lexical import Words
from knowledge.missed import MissedTurns
from knowledge.retrieval import Retriever, Tuning
from knowledge.skill import KnowledgeFirst, RejectedAnswer
from knowledge.store import ImportReport, KnowledgeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Knowledge:
    store: KnowledgeStore
    retriever: Retriever
    missed: MissedTurns
    customers: CustomerFacts
    encoder: UniversalSentenceEncoder

    def answering_first(self, otherwise: Skill, templates: Templates, *, reason: str) -> Skill:
        """``otherwise`` (a last-resort skill), with the knowledge base asked first."""
        return KnowledgeFirst(otherwise, self.retriever, self.customers, self.missed, templates, reason=reason)

    def rejection(self, templates: Templates) -> Skill:
        return RejectedAnswer(self.missed, templates)

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
    )


async def build_knowledge(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, customers: CustomerFacts, *, tuning: Tuning = Tuning(),
    user_dict: Path | None = None,
) -> Knowledge:
    """Stores with their indexes, the encoder and jieba loaded (off the loop)."""
    encoder = UniversalSentenceEncoder()
    words = Words(user_dict)
    store = KnowledgeStore(db, redis, encoder)
    missed = MissedTurns(db)
    await store.ensure_indexes()
    await missed.ensure_indexes()
    await encoder.warm()
    await encoder.run(words.load)
    return Knowledge(store, Retriever(store, encoder, words, tuning), missed, customers, encoder)


async def load_demo(store: KnowledgeStore, path: Path = DEMO_BASE) -> ImportReport:
    """The demo knowledge base (simulator mode); unchanged entries are left as they are."""
    parsed = await asyncio.to_thread(parse_file, path)
    report = await store.save_many(parsed.entries, actor="demo")
    log.info("demo knowledge base: %d created, %d changed, %d unchanged", report.created, report.changed, report.unchanged)
    return report
