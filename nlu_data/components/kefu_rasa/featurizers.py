"""Word counts that give "a word never seen before" a feature of its own.

Rasa's CountVectorsFeaturizer drops words it did not see in training, so a message
about a topic no example touches ("比特币现在多少钱", "why is the sky blue") keeps only
its few familiar words, and DIET places it, confidently, in whatever business intent
those words lean to. Rasa can map unknown words to an OOV token, but only learns what
that token means from words listed in ``OOV_words`` by hand.

This featurizer makes that list itself: words found in fewer than ``oov_min_examples``
training examples are replaced by the OOV token while training, so the token is learnt
from the long tail of rare words (most of them in out_of_scope, whose topics are
scattered), and at prediction every unseen word maps to it. The list is saved with the
model like a hand-written one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.utils.spacy_utils import SpacyModel
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData


class _Membership(list):  # type: ignore[type-arg]
    """A list (saved as JSON like Rasa's own OOV_words) with set-speed ``in``: Rasa tests
    every training token against the list."""

    def __init__(self, words: list[str]) -> None:
        super().__init__(words)
        self._set = frozenset(words)

    def __contains__(self, word: object) -> bool:
        return word in self._set


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class KefuRareWordsFeaturizer(CountVectorsFeaturizer):
    """CountVectorsFeaturizer (word analyzer) whose rare training words stand for unseen ones."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **CountVectorsFeaturizer.get_default_config(),
            "OOV_token": "kefuoov",
            "oov_min_examples": 2,
        }

    def train(self, training_data: TrainingData, model: Optional[SpacyModel] = None) -> Resource:
        if self.OOV_token and self.analyzer == "word":
            seen: Counter[str] = Counter()
            for example in training_data.training_examples:
                tokens = self._process_tokens(self._get_message_tokens_by_attribute(example, TEXT), TEXT)
                seen.update(set(tokens))
            floor = int(self._config["oov_min_examples"])
            self.OOV_words = _Membership(sorted(w for w, n in seen.items() if n < floor))
        return super().train(training_data, model)
