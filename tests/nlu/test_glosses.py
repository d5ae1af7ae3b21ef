"""The gloss lookup behind kefu_rasa.gloss_featurizer, run in Rasa's own venv.

The component lives in Rasa's Python 3.10 interpreter, not the gateway's, so each
check runs there as a small script and reports JSON back.
"""

from __future__ import annotations

import json

import pytest

from bot.nlu.settings import NluSettings
from tests.nlu.conftest import run_in_rasa

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def meanings(nlu_settings: NluSettings) -> dict[str, list[str]]:
    """``glosses.meaning`` of a fixed set of tokens, computed by Rasa's interpreter."""
    tokens = [
        "再会", "當然", "当然", "Certainly", "没毛病", "不制冷",
        "XK-8800", "88", "！", "ㄅㄆ",
    ]
    script = (
        "import json, sys\n"
        "from kefu_rasa.glosses import meaning\n"
        "print(json.dumps({t: list(meaning(t)) for t in json.loads(sys.argv[1])}))\n"
    )
    result = run_in_rasa(nlu_settings, script, json.dumps(tokens))
    return {str(k): [str(w) for w in v] for k, v in result.items()}


def test_chinese_word_means_its_english_glosses(meanings: dict[str, list[str]]) -> None:
    # CC-CEDICT: 再会 "to meet again; until we meet again; goodbye".
    assert "goodbye" in meanings["再会"]
    assert "to" not in meanings["再会"]  # function words of the glosses are dropped
    # 当然 "only natural; as it should be; certainly; of course; without doubt".
    assert "certainly" in meanings["当然"]


def test_traditional_characters_mean_the_same(meanings: dict[str, list[str]]) -> None:
    assert meanings["當然"] == meanings["当然"]


def test_english_word_stands_for_itself_in_the_same_space(meanings: dict[str, list[str]]) -> None:
    # Lower-cased, so that it meets the gloss of 当然 in one feature.
    assert meanings["Certainly"] == ["certainly"]


def test_word_unknown_whole_is_read_as_its_dictionary_words(meanings: dict[str, list[str]]) -> None:
    # 没毛病 is slang and not a headword; 没 and 毛病 are.
    assert {"not", "fault"} <= set(meanings["没毛病"])
    # 不制冷 -> 不 + 制冷 ("refrigeration").
    assert "refrigeration" in meanings["不制冷"]


def test_codes_numbers_and_symbols_mean_nothing(meanings: dict[str, list[str]]) -> None:
    # Model numbers and the like are left to the other featurizers and to DIET.
    for token in ("XK-8800", "88", "！", "ㄅㄆ"):
        assert meanings[token] == [], token
