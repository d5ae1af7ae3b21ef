"""A linear intent classifier blended with DIET's ranking.

On Kefu's examples (about 4,000, 17 intents, zh and en) a logistic regression on the
pipeline's sparse sentence features, weighted like TF-IDF, generalised better to
held-out sentences than DIET did, and the blend of the two better than either (numbers
in nlu_data/README.md). DIET stays in the pipeline: it extracts the entities, and its
intent ranking is the other half of the blend.

Features: every *sentence* feature of the text, one block per featurizer. Sparse
blocks (word counts, word pairs, char n-gram counts, gloss words, regex hits) get
sublinear term frequency and inverse document frequency learnt in training; dense
blocks (a sentence encoder's vector) are taken as they are. Every block is then scaled
to unit length, so that no featurizer outweighs another by its size. The model is
stored as plain arrays (``numpy.savez`` without pickle), so loading a model file runs
no stored code.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple, Type

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
from rasa.shared.nlu.training_data.features import Features
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
        if "coef" in self._arrays:
            self._prepare()

    def _prepare(self) -> None:
        """What every parse needs from the stored arrays, derived once per model."""
        self._layout = _Layout(self._arrays["widths"], self._arrays["dense"])
        # Transposed once, contiguous: a transposed view made scipy copy the whole
        # coefficient matrix on every parse.
        self._coef_t = np.ascontiguousarray(self._arrays["coef"].T)
        self._classes = [str(c) for c in self._arrays["classes"]]

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
    def _sentence_features(message: Message) -> List[Features]:
        """The message's sentence features, one per featurizer, in pipeline order
        (featurizer names differ between the training and the inference graph, their
        order does not)."""
        return [
            f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE
        ]

    @classmethod
    def _blocks(cls, message: Message) -> List[Tuple[int, np.ndarray, np.ndarray]]:
        """Each sentence feature as (width, columns, values) of its nonzeros.

        Read straight off the arrays: this runs once per parse, and building a scipy
        matrix per block cost more than the whole logistic regression.
        """
        blocks = []
        for f in cls._sentence_features(message):
            if f.is_sparse():
                m = f.features.tocoo()  # Rasa keeps sentence features as COO already
                blocks.append((int(m.shape[-1]), m.col, m.data))
            else:
                v = np.asarray(f.features).reshape(-1)
                nonzero = np.flatnonzero(v)
                blocks.append((len(v), nonzero, v[nonzero]))
        return blocks

    def _stack(self, messages: List[Message]) -> scipy.sparse.csr_matrix:
        """The messages' raw sentence features side by side, in the trained layout,
        built from the blocks' nonzeros directly."""
        widths = [int(w) for w in self._arrays["widths"]]
        offsets = np.concatenate([[0], np.cumsum(widths)])
        data: List[np.ndarray] = []
        cols: List[np.ndarray] = []
        indptr = [0]
        for message in messages:
            blocks = self._blocks(message)
            nonzeros = 0
            # Not featurised as in training (e.g. empty text): no evidence at all.
            if [width for width, _, _ in blocks] == widths:
                for (_, columns, values), offset in zip(blocks, offsets):
                    data.append(values)
                    cols.append(columns + offset)
                    nonzeros += len(columns)
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
        features = self._sentence_features(examples[0])
        widths = np.array([f.features.shape[-1] for f in features], dtype=np.int64)
        dense = np.array([not f.is_sparse() for f in features], dtype=bool)
        self._arrays = {"widths": widths, "dense": dense}
        layout = _Layout(widths, dense)
        raw = self._stack(examples)
        # Document frequency of each column over the training examples; a dense
        # block's columns are not counts and keep weight 1.
        df = np.bincount(raw.indices[raw.data > 0], minlength=raw.shape[1])
        idf = np.log((1.0 + raw.shape[0]) / (1.0 + df)) + 1.0
        idf[~layout.counts] = 1.0
        self._arrays["idf"] = idf
        x = layout.normalise(raw, idf)
        y = [e.get(INTENT) for e in examples]
        clf = LogisticRegression(C=float(self._config["C"]), max_iter=int(self._config["max_iter"]))
        clf.fit(x, y)
        self._arrays.update(
            classes=np.array(clf.classes_, dtype=str),
            coef=clf.coef_.astype(np.float64),
            intercept=clf.intercept_.astype(np.float64),
        )
        self._prepare()
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
        x = self._layout.normalise(self._stack(messages), self._arrays["idf"])
        logits = x @ self._coef_t + self._arrays["intercept"]
        logits = np.asarray(logits)
        if logits.shape[1] == 1:  # two intents: sklearn keeps the second one's logit
            logits = np.hstack([np.zeros_like(logits), logits])
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        classes = self._classes
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


class _Layout:
    """Which block each feature column belongs to, and which columns are counts."""

    def __init__(self, widths: np.ndarray, dense: np.ndarray) -> None:
        self.blocks = len(widths)
        self.block_of = np.repeat(np.arange(self.blocks), widths)
        self.counts = ~np.repeat(dense, widths)

    def normalise(self, x: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
        """Sublinear tf (1 + log count) times idf in the count blocks, then unit length
        within each block.

        Works in place on ``x`` (always a matrix ``_stack`` has just built) and returns
        it.
        """
        block_of = self.block_of[x.indices]
        counts = self.counts[x.indices]
        x.data[counts] = np.maximum(1.0 + np.log(np.maximum(x.data[counts], 1e-12)), 0.0)
        x.data *= idf[x.indices]
        # Squared length of every (row, block), then each nonzero divided by its own.
        row_of = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        sq = np.zeros((x.shape[0], self.blocks))
        np.add.at(sq, (row_of, block_of), x.data**2)
        norms = np.sqrt(sq[row_of, block_of])
        x.data /= np.where(norms > 0, norms, 1.0)
        return x
