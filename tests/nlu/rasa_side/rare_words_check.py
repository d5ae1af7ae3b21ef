"""Runs in Rasa's Python 3.10 (see tests/nlu/test_components.py): trains
KefuRareWordsFeaturizer on a few whitespace-tokenized examples, saves and loads it the
way a model does, and prints what it makes of seen, rare and unseen words as JSON."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from kefu_rasa.featurizers import KefuRareWordsFeaturizer
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

EXAMPLES = [("my fridge is broken", "report_repair"), ("the fridge is leaking", "report_repair"),
            ("renew my contract", "ask_renewal"), ("renew the contract please", "ask_renewal"),
            ("what is the capital of peru", "out_of_scope")]


def columns(featurizer: KefuRareWordsFeaturizer, tokenizer: WhitespaceTokenizer, text: str) -> list[str]:
    """The vocabulary entries a message's sentence features count."""
    msg = Message(data={TEXT: text})
    tokenizer.process([msg])
    featurizer.process([msg])
    _, sentence = msg.get_sparse_features(TEXT)
    assert sentence is not None
    vocab = {i: w for w, i in featurizer.vectorizers[TEXT].vocabulary_.items()}
    return sorted(vocab[i] for i in sentence.features.nonzero()[1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        storage = LocalModelStorage(Path(tmp))
        resource = Resource("rare_words")
        context = ExecutionContext(GraphSchema({}), "check")
        tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
        messages = [Message(data={TEXT: t, "intent": i}) for t, i in EXAMPLES]
        data = TrainingData(messages)
        tokenizer.process_training_data(data)
        config = {**KefuRareWordsFeaturizer.get_default_config(), **json.loads(sys.argv[1])}
        trained = KefuRareWordsFeaturizer.create(config, storage, resource, context)
        trained.train(data)
        loaded = KefuRareWordsFeaturizer.load(config, storage, resource, context)
        print(json.dumps({
            "oov_words": sorted(loaded.OOV_words),
            "seen": columns(loaded, tokenizer, "fridge contract"),
            "unseen": columns(loaded, tokenizer, "bitcoin price today"),
            "rare": columns(loaded, tokenizer, "capital"),
        }))


if __name__ == "__main__":
    main()
