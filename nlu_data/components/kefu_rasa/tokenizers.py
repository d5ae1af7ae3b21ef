"""A jieba tokenizer that drops whitespace tokens.

Rasa's JiebaTokenizer keeps the spaces jieba yields as tokens of their own. In English
and mixed text DIET then sometimes tags a space at the edge of an entity, and the
value comes out as " mail" or "full details ", which the synonym mapper no longer
recognises (so "mail" would not become "email"). Whitespace carries no meaning for
any component here, so it is removed before featurisation.
"""

from __future__ import annotations

from typing import List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True
)
class KefuJiebaTokenizer(JiebaTokenizer):
    """JiebaTokenizer without whitespace tokens; same options, same dictionary."""

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        return [t for t in super().tokenize(message, attribute) if t.text.strip()]
