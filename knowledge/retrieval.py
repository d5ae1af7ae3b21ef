"""Finding the entry that answers a question: dense vectors and words, fused, thresholded.

Two signals per entry:

* ``dense``: the mean of the two best cosines between the question's sentence vector and
  the vectors of the entry's question forms (title and short answers included). It
  carries meaning across languages (a Chinese question finds an English-only entry) and
  across phrasings that share no word. Two forms rather than the best one alone: one
  form that happens to lie near a question is weaker evidence than two, and with the
  best form alone every form added to an entry also raised its score for questions it
  does not answer (measured in knowledge/README.md).
* ``lexical``: how much of the question's words, weighted by inverse document
  frequency, the entry's question forms, title and tags contain (0..1). It sharpens
  the choice between entries the encoder places close together ("XK-8800" vs
  "XK-9900", 发票 vs 收据).

``score = dense + lexical_weight * lexical``, then for the products in focus (the models
the question names, else the ones the customer owns) plus ``product_boost`` for an
entry tagged with one of them and minus it for one tagged only with other models. The bot answers only when the best score
clears ``threshold`` *and* leads the runner-up (another entry) by ``margin``; the two
numbers are chosen on the labelled set and checked on held-out folds of it
(``kefu kb test --folds``).

The whole search is numpy over arrays built once per knowledge-base revision; it runs
in the encoder's thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from knowledge.encoder import DIMENSIONS, SentenceEncoder, Vectors
from knowledge.entry import Entry
from knowledge.lexical import MODEL_NUMBER, Words

log = logging.getLogger(__name__)


#: Entries scored on every form when the base is large (see ``KnowledgeIndex.dense``).
SHORTLIST = 256


def is_model(tag: str) -> bool:
    """Whether a tag names a product model (XK-8800) rather than a topic."""
    return bool(MODEL_NUMBER.fullmatch(tag.strip()))


def product_key(name: str) -> str:
    """A product's model number in the form tokens and tags are compared in (XK8800)."""
    return name.upper().replace("-", "").replace(" ", "")


@dataclass(frozen=True, slots=True)
class Tuning:
    """Chosen on the labelled set (``kefu kb test --folds 5`` shows what the choice
    does on questions it was not chosen on): the margin is what keeps confident wrong
    answers rare, since two entries close to each other in meaning both score high on
    a question that matches either only loosely."""

    threshold: float = 0.60
    margin: float = 0.11
    lexical_weight: float = 0.4
    product_boost: float = 0.15
    # A best entry that clears the threshold but not the margin is offered with the
    # entries within the margin of it that score at least this much: the customer picks
    # (a clarifying question, see knowledge/skill.py). The threshold's own value: on the
    # demo set (knowledge/README.md) a lower bar of 0.50 offers 5 more choices with 3
    # more right entries among them, for entries the bot would not answer with alone.
    offer_floor: float = 0.60

    def accepts(self, score: float, lead: float) -> bool:
        """Whether a best entry with this score and lead over the runner-up is answered."""
        return score >= self.threshold and lead >= self.margin

    def offers(self, best: float, other: float) -> bool:
        """Whether an entry scoring ``other`` is offered beside an unsure best one."""
        return best >= self.threshold and other >= self.offer_floor and best - other < self.margin


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
    lead: float = 0.0  # the best score minus the best competing entry's
    # When not confident: the close entries to let the customer choose from, best
    # first (two or three, else none).
    choices: tuple[Match, ...] = ()

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


def two_best_mean(cosines: npt.NDArray[np.float32], starts: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Per segment (an entry's forms, ``starts``/``counts``) the mean of its two largest
    values; a one-form segment gives its value. Vectorised: the best of each segment,
    then the best of the rest once the best's first position is masked out."""
    best = np.maximum.reduceat(cosines, starts)
    positions = np.arange(len(cosines))
    first = np.minimum.reduceat(np.where(cosines == np.repeat(best, counts), positions, len(cosines)), starts)
    rest = cosines.copy()
    rest[first] = -np.inf
    second = np.maximum.reduceat(rest, starts)
    second = np.where(counts > 1, second, best)
    return ((best + second) / 2).astype(np.float32, copy=False)


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
        self.counts = np.asarray(counts, np.int64)
        # One unit vector per entry (the mean of its forms): a large base is scored on
        # these first, and only a shortlist on every form (see ``dense``).
        sums = np.add.reduceat(self.vectors, self.starts, axis=0) if n else np.zeros((0, DIMENSIONS), np.float32)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self.centroids = (sums / np.maximum(norms, 1e-6)).astype(np.float32)
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
        self.about_models = np.fromiter((bool(m) for m in self.models), np.bool_, n)
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

    def dense(self, vector: Vectors, lexical: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
        """Each entry's mean of its two best cosines over its forms (see the module doc).

        Reading every form vector costs memory bandwidth (10,000 entries with six forms
        each are 120 MB): past ``SHORTLIST`` entries, the entries' mean vectors pick a
        shortlist (with the best lexical matches), only those are scored on every form,
        and the rest keep their mean-vector score, which leaves them out of the running.
        """
        n = len(self.entries)
        if not n:
            return np.zeros(0, np.float32)
        v = vector.reshape(-1)
        if n <= 2 * SHORTLIST:
            return two_best_mean(self.vectors @ v, self.starts, self.counts)
        scores: npt.NDArray[np.float32] = (self.centroids @ v).astype(np.float32)
        picked = np.argpartition(-scores, SHORTLIST)[:SHORTLIST]
        if lexical is not None:
            picked = np.union1d(picked, np.argpartition(-lexical, SHORTLIST)[:SHORTLIST])
        rows = np.concatenate([np.arange(self.starts[i], self.starts[i] + self.counts[i]) for i in picked])
        per_form = self.vectors[rows] @ v
        bounds = np.cumsum(np.concatenate(([0], self.counts[picked][:-1])))
        scores[picked] = two_best_mean(per_form, bounds, self.counts[picked])
        return scores

    def search(
        self, text: str, vector: Vectors, tuning: Tuning, *, products: frozenset[str] = frozenset(),
        day: dt.date | None = None, limit: int = 3,
    ) -> Found:
        if not self.entries:
            return Found((), False)
        lexical = self.lexical(text)
        dense = self.dense(vector, lexical)
        score = dense + np.float32(tuning.lexical_weight) * lexical
        focus = self.focus(text, products)
        if focus:
            boost = np.float32(tuning.product_boost)
            score[self.about_models] -= boost
            about_focus = [self.products[k] for k in focus if k in self.products]
            if about_focus:
                score[np.unique(np.concatenate(about_focus))] += 2 * boost
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
        if tuning.accepts(matches[0].score, lead):
            return Found(matches, True, lead)
        return Found(matches, False, lead, self._choices(matches, top, focus, tuning))

    def _choices(self, matches: tuple[Match, ...], top: npt.NDArray[np.int64], focus: frozenset[str], tuning: Tuning) -> tuple[Match, ...]:
        """The best entry and the competing ones close to it, when there are any; an
        entry only about other products than the ones in focus is no choice (see
        :meth:`_runner_up`)."""
        best = matches[0]
        mine = bool(self.models[top[0]] & focus)
        close = [
            m for m, i in zip(matches[1:], top[1:])
            if tuning.offers(best.score, m.score) and not (mine and self.models[i] and not self.models[i] & focus)
        ]
        return (best, *close[:2]) if close else ()

    def products_matter(self, text: str, found: Found) -> bool:
        """Whether the customer's products could change this search's outcome."""
        return not MODEL_NUMBER.search(text) and any(m.entry.tags and any(map(is_model, m.entry.tags)) for m in found.matches)

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
        self._rebuild: asyncio.Task[None] | None = None

    async def current(self) -> KnowledgeIndex:
        """The index for the source's revision. After an edit the previous index keeps
        answering while the new one is built (16 s for 10,000 entries on the embedded
        server); only the very first question waits for one."""
        revision = await self.source.revision()
        index = self.index
        if index is not None:
            if index.revision != revision and (self._rebuild is None or self._rebuild.done()):
                self._rebuild = asyncio.create_task(self._build(), name="knowledge-index")
            return index
        async with self._lock:
            if self.index is None:
                await self._build()
            assert self.index is not None
            return self.index

    async def _build(self) -> None:
        try:
            loaded, items = await self.source.indexed(self.encoder)
            self.index = await self.encoder.run(lambda: KnowledgeIndex(items, self.words, loaded))
            log.info("knowledge index: %d entries (revision %d)", len(self.index), loaded)
        except Exception:
            if self.index is None:
                raise
            log.exception("knowledge index rebuild failed; answering from revision %d", self.index.revision)

    async def close(self) -> None:
        if self._rebuild is not None:
            self._rebuild.cancel()
            await asyncio.gather(self._rebuild, return_exceptions=True)

    async def search(
        self, text: str, *, products: frozenset[str] | Callable[[], Awaitable[frozenset[str]]] = frozenset(), limit: int = 3,
        vector: Vectors | None = None,
    ) -> Found:
        """The best entries for ``text``; encoding and scoring run in the encoder's thread.

        ``products`` may be a coroutine function: it is called only when the products
        could change the outcome (the question names no model and a candidate is tagged
        with one), which spares most questions the customer lookup. ``vector`` is the
        text's sentence vector when it is already known (the NLU computed it, see
        :func:`knowledge.encoder.reusable`): the encoding is then skipped."""
        index = await self.current()
        known = products if isinstance(products, frozenset) else frozenset()

        def first() -> tuple[Vectors, Found]:
            v = self.encoder.encode_blocking([text])[0] if vector is None else vector
            return v, index.search(text, v, self.tuning, products=known, limit=limit)

        used, found = await self.encoder.run(first)
        if isinstance(products, frozenset) or not index.products_matter(text, found):
            return found
        owned = await products()
        if not owned:
            return found
        return await self.encoder.run(lambda: index.search(text, used, self.tuning, products=owned, limit=limit))
