"""A linear intent classifier blended with DIET's ranking.

On Kefu's examples (about 4,000, 17 intents, zh and en) a logistic regression on the
pipeline's sparse sentence features, weighted like TF-IDF, generalised better to
held-out sentences than DIET did, and the blend of the two better than either (numbers
in nlu_data/README.md). DIET stays in the pipeline: it extracts the entities, and its
intent ranking is the other half of the blend.

Features: every sparse *sentence* feature of the text (one block per featurizer, e.g.
word counts, word pairs, char n-gram counts, gloss words, regex hits), each block with
sublinear term frequency, inverse document frequency learnt in training, and unit
length, so that no featurizer outweighs another by its size. The model is stored as
plain arrays (``numpy.savez`` without pickle), so loading a model file runs no stored
code.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
import scipy.sparse
from sklearn.linear_model import LogisticRegression

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

MODEL_FILE = "linear_intent.npz"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class LinearIntentClassifier(IntentClassifier, GraphComponent):
    """Logistic regression on TF-IDF-weighted sentence features, blended with the
    intent ranking an earlier classifier (DIET) left on the message."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Featurizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Share of this classifier in the blend; 1.0 ignores the earlier ranking.
            "weight": 0.7,
            # Inverse regularisation strength: the examples are few and clean, so the
            # model may fit them closely.
            "C": 100.0,
            "max_iter": 5000,
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        arrays: Optional[Dict[str, np.ndarray]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._arrays: Dict[str, np.ndarray] = arrays or {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        return cls(config, model_storage, resource)

    # ----------------------------------------------------------------- features

    @staticmethod
    def _blocks(message: Message) -> List[scipy.sparse.csr_matrix]:
        """The message's sparse sentence features, one 1-row block per featurizer, in
        pipeline order (featurizer names differ between the training and the
        inference graph, their order does not)."""
        return [
            scipy.sparse.csr_matrix(f.features)
            for f in message.features
            if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE and f.is_sparse()
        ]

    def _stack(self, messages: List[Message]) -> scipy.sparse.csr_matrix:
        """The messages' raw sentence features side by side, in the trained layout.

        Built from the blocks' nonzeros directly: this runs once per parse, and
        scipy's hstack/vstack cost more than the whole logistic regression.
        """
        widths = [int(w) for w in self._arrays["widths"]]
        offsets = np.concatenate([[0], np.cumsum(widths)])
        data: List[np.ndarray] = []
        cols: List[np.ndarray] = []
        indptr = [0]
        for message in messages:
            blocks = self._blocks(message)
            nonzeros = 0
            # Not featurised as in training (e.g. empty text): no evidence at all.
            if [b.shape[1] for b in blocks] == widths:
                for block, offset in zip(blocks, offsets):
                    data.append(block.data)
                    cols.append(block.indices + offset)
                    nonzeros += len(block.indices)
            indptr.append(indptr[-1] + nonzeros)
        return scipy.sparse.csr_matrix(
            (
                np.concatenate(data).astype(np.float64) if data else np.zeros(0),
                np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64),
                np.array(indptr),
            ),
            shape=(len(messages), int(offsets[-1])),
        )

    # ----------------------------------------------------------------- training

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            logger.debug("LinearIntentClassifier: no intent examples, nothing trained")
            return self._resource
        widths = np.array([b.shape[1] for b in self._blocks(examples[0])], dtype=np.int64)
        self._arrays = {"widths": widths}
        raw = self._stack(examples)
        # Document frequency of each column over the training examples.
        df = np.bincount(raw.indices[raw.data > 0], minlength=raw.shape[1])
        self._arrays["idf"] = np.log((1.0 + raw.shape[0]) / (1.0 + df)) + 1.0
        x = _normalise(raw, self._arrays["idf"], widths)
        y = [e.get(INTENT) for e in examples]
        clf = LogisticRegression(C=float(self._config["C"]), max_iter=int(self._config["max_iter"]))
        clf.fit(x, y)
        self._arrays.update(
            classes=np.array(clf.classes_, dtype=str),
            coef=clf.coef_.astype(np.float64),
            intercept=clf.intercept_.astype(np.float64),
        )
        with self._model_storage.write_to(self._resource) as path:
            np.savez(path / MODEL_FILE, **self._arrays)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        with model_storage.read_from(resource) as path:
            with np.load(path / MODEL_FILE, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
        return cls(config, model_storage, resource, arrays)

    # ---------------------------------------------------------------- inference

    def process(self, messages: List[Message]) -> List[Message]:
        if "coef" not in self._arrays or not messages:
            return messages
        x = _normalise(self._stack(messages), self._arrays["idf"], self._arrays["widths"])
        logits = x @ self._arrays["coef"].T + self._arrays["intercept"]
        logits = np.asarray(logits)
        if logits.shape[1] == 1:  # two intents: sklearn keeps the second one's logit
            logits = np.hstack([np.zeros_like(logits), logits])
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        classes = [str(c) for c in self._arrays["classes"]]
        weight = float(self._config["weight"])
        for message, p in zip(messages, probs):
            earlier = {r["name"]: float(r["confidence"]) for r in message.get("intent_ranking") or []}
            scores = {
                name: weight * float(q) + (1.0 - weight) * earlier.get(name, 0.0)
                for name, q in zip(classes, p)
            }
            ranking = [
                {"name": name, "confidence": conf}
                for name, conf in sorted(scores.items(), key=lambda kv: -kv[1])
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            length = int(self._config["ranking_length"])
            message.set("intent_ranking", ranking[:length] if length > 0 else ranking, add_to_output=True)
        return messages


def _normalise(x: scipy.sparse.csr_matrix, idf: np.ndarray, widths: np.ndarray) -> scipy.sparse.csr_matrix:
    """Sublinear tf (1 + log count), times idf, then unit length within each block.

    Works in place on ``x`` (always a matrix ``_stack`` has just built) and returns it.
    """
    x.data = np.maximum(1.0 + np.log(np.maximum(x.data, 1e-12)), 0.0)
    x.data *= idf[x.indices]
    # Squared length of every (row, block), then each nonzero divided by its own.
    block_of = np.repeat(np.arange(len(widths)), widths)[x.indices]
    row_of = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    sq = np.zeros((x.shape[0], len(widths)))
    np.add.at(sq, (row_of, block_of), x.data**2)
    norms = np.sqrt(sq[row_of, block_of])
    x.data /= np.where(norms > 0, norms, 1.0)
    return x
