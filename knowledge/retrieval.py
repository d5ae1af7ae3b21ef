"""Finding the entry that answers a question: dense vectors and words, fused, thresholded.

Two signals per entry:

* ``dense``: the best cosine between the question's sentence vector and the vectors of
  the entry's question forms. It carries meaning across languages (a Chinese question
  finds an English-only entry) and across phrasings that share no word.
* ``lexical``: how much of the question's words, weighted by inverse document
  frequency, the entry's question forms, title and tags contain (0..1). It sharpens
  the choice between entries the encoder places close together ("XK-8800" vs
  "XK-9900", 发票 vs 收据).

``score = dense + lexical_weight * lexical``, then for the products in focus (the models
the question names, else the ones the customer owns) plus ``product_boost`` for an
entry tagged with one of them and minus it for one tagged only with other models. The bot answers only when the best score
clears ``threshold`` *and* leads the runner-up (another entry) by ``margin``; the two
numbers are chosen on the labelled set (``kefu kb test``).

The whole search is numpy over arrays built once per knowledge-base revision; it runs
in the encoder's thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from knowledge.encoder import DIMENSIONS, SentenceEncoder, Vectors
from knowledge.entry import Entry
from knowledge.lexical import MODEL_NUMBER, Words

log = logging.getLogger(__name__)


def is_model(tag: str) -> bool:
    """Whether a tag names a product model (XK-8800) rather than a topic."""
    return bool(MODEL_NUMBER.fullmatch(tag.strip()))


def product_key(name: str) -> str:
    """A product's model number in the form tokens and tags are compared in (XK8800)."""
    return name.upper().replace("-", "").replace(" ", "")


@dataclass(frozen=True, slots=True)
class Tuning:
    """Chosen on the labelled set (``kefu kb test --sweep``): the margin is what keeps
    confident wrong answers rare, since two entries close to each other in meaning
    both score high on a question that matches either only loosely."""

    threshold: float = 0.64
    margin: float = 0.16
    lexical_weight: float = 0.4
    product_boost: float = 0.15


@dataclass(frozen=True, slots=True)
class Match:
    entry: Entry
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True, slots=True)
class Found:
    """A search's outcome: the ranked candidates and whether the best one is answered."""

    matches: tuple[Match, ...]
    confident: bool

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    @property
    def answer(self) -> Entry | None:
        return self.matches[0].entry if self.confident and self.matches else None


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """An entry with the vectors of its forms (rows match ``entry.forms()``)."""

    entry: Entry
    vectors: Vectors


class KnowledgeIndex:
    """Arrays over one revision of the knowledge base; immutable once built."""

    def __init__(self, items: Sequence[IndexedEntry], words: Words, revision: int = 0) -> None:
        self.revision = revision
        self.entries = [i.entry for i in items]
        self.words = words
        n = len(items)
        counts = [len(i.entry.forms()) for i in items]
        self.vectors: Vectors = (
            np.vstack([i.vectors for i in items]).astype(np.float32, copy=False) if n else np.zeros((0, DIMENSIONS), np.float32)
        )
        self.starts = np.cumsum([0, *counts[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
        postings: dict[str, set[int]] = defaultdict(set)
        products: dict[str, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            e = item.entry
            for token in words.tokens(" ".join((*e.forms(), *e.tags))):
                postings[token].add(index)
            for tag in e.tags:
                products[product_key(tag)].append(index)
        self.postings = {t: np.fromiter(sorted(s), np.int64, len(s)) for t, s in postings.items()}
        # Smoothed idf; a word the base never uses weighs as much as the rarest one.
        self.idf = {t: math.log(1 + (n + 1) / (len(s) + 0.5)) for t, s in postings.items()}
        self.max_idf = math.log(1 + (n + 1) / 0.5) if n else 1.0
        self.products = {k: np.asarray(v, np.int64) for k, v in products.items()}
        self.models = [frozenset(product_key(t) for t in e.tags if is_model(t)) for e in self.entries]
        self.valid_from = [e.valid_from for e in self.entries]
        self.valid_to = [e.valid_to for e in self.entries]
        self._valid: tuple[str, npt.NDArray[np.bool_]] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def _valid_mask(self, day: dt.date) -> npt.NDArray[np.bool_]:
        iso = day.isoformat()
        cached = self._valid
        if cached is not None and cached[0] == iso:
            return cached[1]
        mask = np.fromiter(
            ((not f or f <= iso) and (not t or iso <= t) for f, t in zip(self.valid_from, self.valid_to)),
            np.bool_, len(self.entries),
        )
        self._valid = (iso, mask)
        return mask

    def lexical(self, text: str) -> npt.NDArray[np.float32]:
        scores = np.zeros(len(self.entries), np.float32)
        tokens = set(self.words.tokens(text))
        total = sum(self.idf.get(t, self.max_idf) for t in tokens)
        if not total:
            return scores
        for token in tokens:
            hit = self.postings.get(token)
            if hit is not None:
                scores[hit] += self.idf[token]
        return scores / np.float32(total)

    def dense(self, vector: Vectors) -> npt.NDArray[np.float32]:
        if not len(self.entries):
            return np.zeros(0, np.float32)
        per_question = self.vectors @ vector.reshape(-1)
        return np.maximum.reduceat(per_question, self.starts).astype(np.float32, copy=False)

    def search(
        self, text: str, vector: Vectors, tuning: Tuning, *, products: frozenset[str] = frozenset(),
        day: dt.date | None = None, limit: int = 3,
    ) -> Found:
        if not self.entries:
            return Found((), False)
        dense = self.dense(vector)
        lexical = self.lexical(text)
        score = dense + np.float32(tuning.lexical_weight) * lexical
        focus = self.focus(text, products)
        if focus:
            for i, models in enumerate(self.models):
                if models:
                    score[i] += np.float32(tuning.product_boost if models & focus else -tuning.product_boost)
        score[~self._valid_mask(day or dt.date.today())] = -np.inf
        k = min(limit, len(score))
        top = np.argpartition(-score, k - 1)[:k]
        top = top[np.argsort(-score[top])]
        matches = tuple(
            Match(self.entries[i], float(score[i]), float(dense[i]), float(lexical[i])) for i in top if np.isfinite(score[i])
        )
        if not matches:
            return Found((), False)
        runner_up = self._runner_up(top, focus)
        lead = matches[0].score - (float(score[runner_up]) if runner_up is not None else 0.0)
        return Found(matches, matches[0].score >= tuning.threshold and lead >= tuning.margin)

    @staticmethod
    def focus(text: str, products: frozenset[str]) -> frozenset[str]:
        """The products a question is about: the models it names, else the customer's."""
        named = frozenset(product_key(m) for m in MODEL_NUMBER.findall(text))
        return named or frozenset(product_key(p) for p in products)

    def _runner_up(self, top: npt.NDArray[np.int64], focus: frozenset[str]) -> int | None:
        """The best other entry that competes with the first: when the first is about
        the products in focus, an entry only about other products does not ("how long
        is my warranty" from an XK-8800 owner, "XK-8800保修多久")."""
        mine = bool(self.models[top[0]] & focus)
        for i in top[1:]:
            if mine and self.models[i] and not self.models[i] & focus:
                continue
            return int(i)
        return None


class Source(Protocol):
    """Where the index comes from (the knowledge store)."""

    async def revision(self) -> int:
        """The current revision: one cheap read, so every process sees an edit at once."""

    async def indexed(self, encoder: SentenceEncoder) -> tuple[int, list[IndexedEntry]]:
        """The revision and every entry with its question vectors."""


class Retriever:
    """Searches the current index; rebuilds it when the source's revision moves."""

    def __init__(self, source: Source, encoder: SentenceEncoder, words: Words, tuning: Tuning = Tuning()) -> None:
        self.source = source
        self.encoder = encoder
        self.words = words
        self.tuning = tuning
        self.index: KnowledgeIndex | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> KnowledgeIndex:
        revision = await self.source.revision()
        index = self.index
        if index is not None and index.revision == revision:
            return index
        async with self._lock:
            if self.index is None or self.index.revision != revision:
                loaded, items = await self.source.indexed(self.encoder)
                self.index = await self.encoder.run(lambda: KnowledgeIndex(items, self.words, loaded))
                log.info("knowledge index: %d entries (revision %d)", len(self.index), loaded)
            return self.index

    async def search(self, text: str, *, products: frozenset[str] = frozenset(), limit: int = 3) -> Found:
        """The best entries for ``text``; encoding and scoring run in the encoder's thread."""
        index = await self.current()

        def run() -> Found:
            vector = self.encoder.encode_blocking([text])[0]
            return index.search(text, vector, self.tuning, products=products, limit=limit)

        return await self.encoder.run(run)
