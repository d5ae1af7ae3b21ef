"""Training on several files: every one of them reaches the model.

``rasa train nlu`` keeps only the last ``--nlu`` it is given, so ``train(nlu=[a, b])``
used to train on ``b`` alone. A small real training (the gate test's light pipeline)
on two files, each with intents the other lacks, then a real server asked about both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.nlu import service
from bot.nlu.settings import NluSettings
from tests.nlu.conftest import ROOT
from tests.nlu.test_gate import CONFIG, DATA, _parse


def _examples(path: Path, intents: list[str]) -> Path:
    lines = ['version: "3.1"', "nlu:"]
    for intent in intents:
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {e}" for e in DATA[intent])]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_model_trained_on_two_files_knows_the_intents_of_both(tmp_path: Path) -> None:
    data = tmp_path / "nlu_data"
    (data / "data").mkdir(parents=True)
    shutil.copyfile(ROOT / "nlu_data" / "requirements-rasa.txt", data / "requirements-rasa.txt")
    (data / "config.yml").write_text(CONFIG, encoding="utf-8")
    # The same file name in two folders: both must stay.
    first = _examples(tmp_path / "one" / "examples.yml", ["report_repair", "greet"])
    second = _examples(tmp_path / "two" / "examples.yml", ["ask_invoice"])
    port = service.free_port()
    settings = NluSettings.from_mapping(
        {"data_path": str(data), "models_path": str(tmp_path / "models"), "urls": [f"http://127.0.0.1:{port}"]},
        environ={k: v for k, v in os.environ.items() if k == "KEFU_RASA_VENV"},
    )
    service.install(settings)
    model = service.train(settings, nlu=[first, second.parent])  # a file and a folder
    with service.running_servers(settings, model, [port]) as servers:
        url = servers[0].url
        assert _parse(url, "我要开一张发票") == "ask_invoice"  # only in the second
        assert _parse(url, "冰箱坏了要报修") == "report_repair"  # only in the first
        assert _parse(url, "你好呀") == "greet"
