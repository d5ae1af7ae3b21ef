"""Service helpers that do not need Rasa running: Python discovery, hashes, CLI wiring."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from bot.nlu import cli, environment, service
from bot.nlu.errors import RasaSetupError
from bot.nlu.settings import NluSettings
from tests.nlu.conftest import ROOT


def test_missing_python310_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.10, no uv
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.delenv("KEFU_RASA_PYTHON", raising=False)
    with pytest.raises(RasaSetupError) as info:
        service.find_python310()
    message = str(info.value)
    assert "pyenv install 3.10" in message and "uv" in message and "KEFU_RASA_PYTHON" in message


def test_python310_found_in_pyenv() -> None:
    pyenv = Path.home() / ".pyenv" / "versions"
    if not list(pyenv.glob("3.10.*")) and not shutil.which("python3.10"):
        pytest.skip("no Python 3.10 on this machine")
    found = service.find_python310(allow_uv_install=False)
    assert found.exists()


def _copy_data(tmp_path: Path) -> NluSettings:
    shutil.copytree(ROOT / "nlu_data", tmp_path / "nlu_data")
    return NluSettings.from_mapping(
        {"data_path": str(tmp_path / "nlu_data"), "models_path": str(tmp_path / "models")}, environ={}
    )


def test_training_hash_follows_the_data(tmp_path: Path) -> None:
    settings = _copy_data(tmp_path)
    before = service.training_hash(settings)
    assert service.training_hash(settings) == before  # stable
    assert service.model_path(settings).name == f"nlu-{before}.tar.gz"
    (settings.data_path / "data" / "smalltalk.yml").open("a").write("\n")
    assert service.training_hash(settings) != before
    changed = service.training_hash(settings)
    (settings.data_path / "config.yml").open("a").write("\n# tweak\n")
    assert service.training_hash(settings) != changed


def test_venv_marker_must_match_requirements(tmp_path: Path) -> None:
    settings = _copy_data(tmp_path)
    settings = NluSettings.from_mapping(
        {"data_path": str(settings.data_path), "venv_path": str(tmp_path / "venv")}, environ={}
    )
    assert not service.venv_is_current(settings)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "rasa").touch()
    (tmp_path / "venv" / service.VENV_MARKER).write_text("stale\n")
    assert not service.venv_is_current(settings)
    digest = environment._sha256_file(service.requirements_path(settings))
    (tmp_path / "venv" / service.VENV_MARKER).write_text(digest + "\n")
    assert service.venv_is_current(settings)


def test_cli_registers_nlu_subcommands() -> None:
    parser = argparse.ArgumentParser(prog="kefu")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    for argv in (["nlu", "install"], ["nlu", "train", "--force"], ["nlu", "serve", "--port", "5099"],
                 ["nlu", "parse", "你好"], ["nlu", "test"]):
        args = parser.parse_args(argv)
        assert callable(args.func)
    assert parser.parse_args(["nlu", "parse", "hi there"]).text == "hi there"
    # Several splits can be averaged; none given means the one default split.
    assert parser.parse_args(["nlu", "test", "--seed", "42", "--seed", "7"]).seed == [42, 7]
    assert parser.parse_args(["nlu", "test"]).seed is None


def test_pinned_requirements_pin_rasa() -> None:
    pins = (ROOT / "nlu_data" / service.REQUIREMENTS_FILE).read_text().splitlines()
    assert f"rasa=={service.RASA_VERSION}" in pins
    assert "jieba==0.42.1" in pins
    assert all("==" in p for p in pins if p and not p.startswith("#"))


def test_evaluation_summary_reads_rasa_reports(tmp_path: Path) -> None:
    import json

    (tmp_path / "intent_report.json").write_text(json.dumps({
        "greet": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 8},
        "deny": {"precision": 0.8, "recall": 1.0, "f1-score": 0.889, "support": 4},
        "accuracy": 0.95,
        "macro avg": {"precision": 0.9, "recall": 1.0, "f1-score": 0.944, "support": 12},
        "weighted avg": {"precision": 0.93, "recall": 1.0, "f1-score": 0.96, "support": 12},
    }))
    (tmp_path / "DIETClassifier_report.json").write_text(json.dumps({
        "device_model": {"precision": 1.0, "recall": 0.9, "f1-score": 0.947, "support": 10},
        "no_entity": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 300},
        "micro avg": {"precision": 1.0, "recall": 0.9, "f1-score": 0.947, "support": 10},
    }))
    (tmp_path / "intent_errors.json").write_text(json.dumps([
        {"text": "nah", "intent": "deny", "intent_prediction": {"name": "greet", "confidence": 0.6}},
    ]))
    summary = cli.summarize(tmp_path)
    assert summary["intent"]["macro_f1"] == 0.944 and summary["intent"]["accuracy"] == 0.95
    assert set(summary["entities"]) == {"device_model", "micro avg"}
    assert summary["entities"]["device_model"]["f1"] == 0.947
    table = cli.format_summary(summary)
    assert "macro F1 0.9440" in table and "device_model" in table and "nah" in table


FAKE_RASA = """#!/bin/bash
# Stands in for `rasa train nlu`: counts its runs, prints a tqdm-like bar, writes a model.
out=""; name=""
while [ $# -gt 0 ]; do
  case "$1" in --out) out=$2; shift;; --fixed-model-name) name=$2; shift;; esac; shift
done
echo run >> "$FAKE_RASA_COUNT"
printf 'Epochs:  50%%|##   | 1/2\\rEpochs: 100%%|#####| 2/2\\n'
sleep 1
echo model > "$out/$name.tar.gz"
"""


def test_train_runs_once_and_concurrent_callers_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import threading

    settings = _copy_data(tmp_path)
    settings = NluSettings.from_mapping(
        {"data_path": str(settings.data_path), "venv_path": str(tmp_path / "venv"),
         "models_path": str(tmp_path / "state" / "models")}, environ={},
    )
    rasa = tmp_path / "venv" / "bin" / "rasa"
    rasa.parent.mkdir(parents=True)
    rasa.write_text(FAKE_RASA)
    rasa.chmod(0o755)
    count = tmp_path / "count"
    monkeypatch.setenv("FAKE_RASA_COUNT", str(count))

    results: list[Path] = []
    outs = [io.StringIO() for _ in range(3)]
    threads = [threading.Thread(target=lambda o=o: results.append(service.train(settings, out=o)))
               for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count.read_text().splitlines() == ["run"]  # trained once, not three times
    assert results == [service.model_path(settings)] * 3
    assert service.train(settings, out=io.StringIO()) == results[0]  # cached by hash
    assert count.read_text().splitlines() == ["run"]
    assert not list((tmp_path / "state" / "models").glob(".training-*"))
    assert any("waiting for another process" in o.getvalue() for o in outs)
    assert (tmp_path / "state" / "logs").is_dir()
