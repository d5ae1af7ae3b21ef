"""The knowledge parts on real Redis and the MongoDB-protocol server, with the real encoder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from knowledge.encoder import UniversalSentenceEncoder
from knowledge.lexical import Words
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge"


@pytest.fixture(scope="session")
def encoder() -> Iterator[UniversalSentenceEncoder]:
    enc = UniversalSentenceEncoder()
    enc.encode_blocking(["load the weights once per session"])
    yield enc
    enc.close()


@pytest.fixture(scope="session")
def words() -> Words:
    w = Words()
    w.load()
    return w


@pytest.fixture
async def kb_store(mongo: AsyncMongoClient[Any], redis: Redis, encoder: UniversalSentenceEncoder) -> AsyncIterator[KnowledgeStore]:
    store = KnowledgeStore(mongo.get_default_database(), redis, encoder)
    await store.ensure_indexes()
    yield store


@pytest.fixture
def retriever(kb_store: KnowledgeStore, encoder: UniversalSentenceEncoder, words: Words) -> Retriever:
    return Retriever(kb_store, encoder, words)
