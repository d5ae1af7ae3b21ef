"""Kefu's own Rasa components, run in Rasa's own interpreter (Python 3.10 venv)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.nlu import service
from bot.nlu.settings import NluSettings

CHECK = Path(__file__).parent / "rasa_side" / "rare_words_check.py"


@pytest.fixture(scope="module")
def rasa_python(nlu_settings: NluSettings) -> Path:
    service.install(nlu_settings)
    return nlu_settings.venv_path / "bin" / "python"


def _check(rasa_python: Path, nlu_settings: NluSettings, **config: Any) -> dict[str, Any]:
    out = subprocess.run(
        [str(rasa_python), str(CHECK), json.dumps(config)],
        env=service.rasa_env(nlu_settings), capture_output=True, text=True, timeout=300, check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_words_of_one_example_train_the_token_that_unseen_words_get(rasa_python: Path, nlu_settings: NluSettings) -> None:
    got = _check(rasa_python, nlu_settings)
    # "capital", "peru", "broken", "leaking", "please"... occur in one example each.
    assert {"capital", "peru", "broken", "leaking", "please"} <= set(got["oov_words"])
    assert not {"fridge", "renew", "contract", "the", "is", "my"} & set(got["oov_words"])
    assert got["seen"] == ["contract", "fridge"]
    assert got["unseen"] == ["kefuoov"]  # three unseen words: one feature, not none
    assert got["rare"] == ["kefuoov"]  # a training word too rare to keep is unseen as well


def test_without_a_floor_nothing_is_oov(rasa_python: Path, nlu_settings: NluSettings) -> None:
    # A floor of 1 keeps every training word: unseen words then have no feature at all,
    # which is Rasa's stock behaviour.
    got = _check(rasa_python, nlu_settings, oov_min_examples=1)
    assert got["oov_words"] == []
    assert got["unseen"] == []
