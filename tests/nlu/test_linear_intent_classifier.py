"""kefu_rasa.linear_intent_classifier, trained and run in Rasa's own venv.

The component lives in Rasa's Python 3.10 interpreter, so the checks run there as one
script: it builds a small pipeline of Rasa's real featurizers and our classifier on a
handful of examples, trains, stores, loads and processes, and reports JSON back.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.nlu.settings import NluSettings
from tests.nlu.conftest import run_in_rasa

pytestmark = pytest.mark.slow

# Both intents have the same words in the same numbers; only their order, and so the
# word pairs, tell them apart.
_SCRIPT = r'''
import json, sys, tempfile, pathlib
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from kefu_rasa.linear_intent_classifier import LinearIntentClassifier, MODEL_FILE
from kefu_rasa.sentence_encoder_featurizer import SentenceEncoderFeaturizer

EXAMPLES = {
    "dog_bites": ["dog bites man", "big dog bites man", "dog bites old man"],
    "man_bites": ["man bites dog", "man bites big dog", "old man bites dog"],
}
# English only; the test sentence shares no word with any of them.
GREETINGS = {
    "greet": ["hello", "hi there", "good morning", "hey, nice to meet you"],
    "goodbye": ["goodbye", "see you later", "bye bye", "talk to you tomorrow"],
}
storage = LocalModelStorage(pathlib.Path(tempfile.mkdtemp()))
context = ExecutionContext(GraphSchema({}), "test")

def pipeline(pairs, encoder=False):
    featurizers = [CountVectorsFeaturizer.create({**CountVectorsFeaturizer.get_default_config()},
                                                 storage, Resource("words"), context)]
    if encoder:
        featurizers.append(SentenceEncoderFeaturizer.create(
            SentenceEncoderFeaturizer.get_default_config(), storage, Resource("sentences"), context))
    if pairs:
        featurizers.append(CountVectorsFeaturizer.create(
            {**CountVectorsFeaturizer.get_default_config(), "min_ngram": 2, "max_ngram": 2,
             "use_shared_vocab": True},
            storage, Resource("pairs"), context))
    return WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()), featurizers

def featurise(tokenizer, featurizers, messages, training=False):
    if training:
        data = TrainingData(messages)
        tokenizer.process_training_data(data)
        for f in featurizers:
            if hasattr(f, "train"):
                f.train(data)
            f.process_training_data(data)
        return data
    tokenizer.process(messages)
    for f in featurizers:
        f.process(messages)
    return messages

def train(pairs, name, weight, encoder=False, examples=EXAMPLES):
    tokenizer, featurizers = pipeline(pairs, encoder)
    data = featurise(tokenizer, featurizers, [Message(data={"text": t, "intent": i})
                                              for i, ts in examples.items() for t in ts], training=True)
    config = {**LinearIntentClassifier.get_default_config(), "weight": weight}
    clf = LinearIntentClassifier.create(config, storage, Resource(name), context)
    clf.train(data)
    return tokenizer, featurizers, clf, config

def parse(parts, text, earlier=None):
    tokenizer, featurizers, clf, _ = parts
    message = Message(data={"text": text})
    featurise(tokenizer, featurizers, [message])
    if earlier is not None:
        message.set("intent_ranking", [{"name": k, "confidence": v} for k, v in earlier.items()])
    clf.process([message])
    return {r["name"]: r["confidence"] for r in message.get("intent_ranking")}

out = {}
words_only, with_pairs = train(False, "clf-words", 1.0), train(True, "clf-pairs", 1.0)
out["words_only"] = parse(words_only, "the dog bites man")
out["with_pairs"] = parse(with_pairs, "the dog bites man")
earlier = {"dog_bites": 0.1, "man_bites": 0.9}
blended_parts = train(True, "clf-blend", 0.7)
out["alone"] = parse(blended_parts, "the dog bites man")
out["blended"] = parse(blended_parts, "the dog bites man", earlier)
# Stored as plain arrays: loading must work with pickle refused.
with storage.read_from(Resource("clf-blend")) as path:
    with np.load(path / MODEL_FILE, allow_pickle=False) as stored:
        out["stored"] = sorted(stored.files)
loaded = LinearIntentClassifier.load(blended_parts[3], storage, Resource("clf-blend"), context)
out["loaded"] = parse((blended_parts[0], blended_parts[1], loaded, None), "the dog bites man", earlier)
out["empty"] = parse(with_pairs, "")
# A farewell in Chinese, against English examples: only the sentence vector relates them.
out["words_for_zaijian"] = parse(train(False, "clf-greet-words", 1.0, examples=GREETINGS), "再见")
encoded = train(False, "clf-greet-encoder", 1.0, encoder=True, examples=GREETINGS)
out["encoder_for_zaijian"] = parse(encoded, "再见")
out["encoder_stored_dense"] = encoded[2]._arrays["dense"].tolist()
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def results(nlu_settings: NluSettings) -> dict[str, Any]:
    result: dict[str, Any] = run_in_rasa(nlu_settings, _SCRIPT)
    return result


def test_word_pairs_decide_where_single_words_tie(results: dict[str, Any]) -> None:
    # Without the pair featurizer both intents look alike to the classifier...
    assert abs(results["words_only"]["dog_bites"] - results["words_only"]["man_bites"]) < 0.05
    # ...with it, the pairs "dog bites" and "bites man" decide.
    assert results["with_pairs"]["dog_bites"] > 0.8


def test_ranking_blends_the_earlier_classifier_by_weight(results: dict[str, Any]) -> None:
    # The same examples and settings train the same regression, whatever the weight.
    own, alone, blended = results["with_pairs"], results["alone"], results["blended"]
    for name, earlier in (("dog_bites", 0.1), ("man_bites", 0.9)):
        assert blended[name] == pytest.approx(0.7 * own[name] + 0.3 * earlier, abs=1e-9)
        # No earlier ranking on the message: the other share counts as zero.
        assert alone[name] == pytest.approx(0.7 * own[name], abs=1e-9)
    # Ranked best first, over every trained intent.
    assert list(blended) == sorted(blended, key=lambda n: -blended[n])
    assert set(blended) == {"dog_bites", "man_bites"}


def test_model_is_plain_arrays_and_loads_to_the_same_ranking(results: dict[str, Any]) -> None:
    assert {"classes", "coef", "idf", "intercept", "widths"} <= set(results["stored"])
    assert results["loaded"] == pytest.approx(results["blended"], abs=1e-12)


def test_text_without_features_still_gets_a_full_ranking(results: dict[str, Any]) -> None:
    empty = results["empty"]
    assert set(empty) == {"dog_bites", "man_bites"}
    assert sum(empty.values()) == pytest.approx(1.0)


def test_sentence_vector_carries_meaning_across_languages(results: dict[str, Any]) -> None:
    # Word counts know nothing of 再见: only the intercepts speak, close to even.
    words = results["words_for_zaijian"]
    assert abs(words["greet"] - words["goodbye"]) < 0.1
    # The multilingual sentence vector puts it with "goodbye" and "see you later".
    encoded = results["encoder_for_zaijian"]
    assert encoded["goodbye"] > 0.6
    assert encoded["goodbye"] > words["goodbye"] + 0.15
    # The classifier knows which block is a dense vector (no tf-idf there).
    assert results["encoder_stored_dense"] == [False, True]
