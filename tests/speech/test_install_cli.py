"""Model preparation (joined, verified, converted, idempotent) and the ``speech`` CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from speech.cli import register
from speech.convert import read_ct2, whisper_state_dict
from speech.errors import ModelInstallError
from speech.install import MODEL_SHA256, install_models, locate_part_files, sha256_of
from tests.speech.conftest import REPO, Clips

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parts_installed() -> None:
    try:
        locate_part_files()
    except ModelInstallError as exc:
        pytest.skip(f"model packages not installed: {exc}")


def test_install_joins_verifies_and_is_idempotent(parts_installed: None, tmp_path: Path) -> None:
    first = install_models(tmp_path, pip_install=False, convert_openai=False)
    model_bin = tmp_path / "whisper-base" / "model.bin"
    assert sha256_of(model_bin) == MODEL_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (model_bin.parent / name).is_file()
    assert any("joined and verified" in a for a in first.actions)
    mtime = model_bin.stat().st_mtime_ns

    second = install_models(tmp_path, pip_install=False, convert_openai=False)
    assert any("already installed" in a for a in second.actions)
    assert model_bin.stat().st_mtime_ns == mtime

    # A damaged file (a torn copy, a disk error) is noticed and replaced.
    with open(model_bin, "r+b") as fh:
        fh.truncate(1000)
    install_models(tmp_path, pip_install=False, convert_openai=False)
    assert sha256_of(model_bin) == MODEL_SHA256
    assert not list(model_bin.parent.glob(".*.tmp"))


def test_conversion_covers_every_openai_whisper_parameter(model_path: str) -> None:
    whisper = pytest.importorskip("whisper")
    dims, state = whisper_state_dict(read_ct2(str(Path(model_path) / "model.bin")))
    from dataclasses import asdict

    model = whisper.model.Whisper(whisper.model.ModelDimensions(**asdict(dims)))
    expected = model.state_dict()
    assert set(state) == set(expected)
    for name, array in state.items():
        assert tuple(array.shape) == tuple(expected[name].shape), name


def test_register_adds_speech_commands() -> None:
    parser = argparse.ArgumentParser(prog="kefu")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["speech", "transcribe", "note.amr", "--engine", "openai", "--json"])
    assert args.file == "note.amr" and args.engine == "openai" and args.json
    assert callable(args.func)
    args = parser.parse_args(["speech", "install", "--models-dir", "/srv/models"])
    assert args.models_dir == "/srv/models" and callable(args.func)


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speech.cli", *argv], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_transcribe_json(clips: Clips, model_path: str) -> None:
    result = _cli("transcribe", str(clips.path("en.amr")), "--model-path", model_path, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"text", "language", "duration_s", "elapsed_s", "confidence", "engine"} <= set(data)
    assert "tractor" in data["text"].lower()
    assert data["language"] == "en"


def test_cli_transcribe_plain_and_errors(clips: Clips, model_path: str, tmp_path: Path) -> None:
    result = _cli("speech", "transcribe", str(clips.path("zh.amr")), "--model-path", model_path)
    assert result.returncode == 0, result.stderr
    assert "language: zh" in result.stdout

    empty = tmp_path / "empty.amr"
    empty.write_bytes(b"")
    result = _cli("transcribe", str(empty), "--model-path", model_path, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"] == "audio_empty"
