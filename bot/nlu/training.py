"""Training Rasa's NLU model: a model per hash of its inputs, trained once under a lock.

Blocking: call from CLI code, sync test fixtures or an executor.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO


from bot.nlu.errors import RasaSetupError
from bot.nlu.settings import NluSettings
from bot.nlu.environment import components_path, install, rasa_env, rasa_executable, requirements_path
from bot.nlu.process import exclusive, run_streamed

log = logging.getLogger(__name__)


def _model_inputs(settings: NluSettings) -> list[Path]:
    """Inputs that decide the model besides the examples: config, jieba, components."""
    root = settings.data_path
    files = [root / "config.yml"]
    for sub in (root / "jieba", components_path(settings)):
        files += sorted(p for p in sub.rglob("*") if p.is_file() and p.suffix in (".txt", ".py"))
    return files


def training_files(settings: NluSettings) -> list[Path]:
    """Every file whose content decides the model: data, config, jieba dictionary, code."""
    return [*_model_inputs(settings), *_walk(settings.data_path / "data")]


def training_hash(settings: NluSettings, nlu_files: Sequence[Path] | None = None) -> str:
    """A short content hash of the training inputs and the pinned Rasa set.

    The model file is named by it, so an unchanged hash means an existing model is the
    one training would produce (up to DIET's seeded randomness) and training is skipped.
    """
    digest = hashlib.sha256()
    files = training_files(settings) if nlu_files is None else [*_model_inputs(settings), *nlu_files]
    req = requirements_path(settings)
    for path in [*files, req]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: NluSettings, name: str | None = None) -> Path:
    """Where the model for the current training data is (or would be) stored."""
    return settings.models_path / f"{name or 'nlu-' + training_hash(settings)}.tar.gz"


def train(
    settings: NluSettings,
    *,
    force: bool = False,
    nlu: Sequence[Path] | None = None,
    name: str | None = None,
    out: TextIO | None = None,
    bar_every_s: float = 10.0,
) -> Path:
    """Train the NLU model unless one for the same data hash already exists.

    Args:
        nlu: training files or folders (default ``<data_path>/data``); the held-out
            evaluation passes its own split here. Several are staged into one folder:
            ``rasa train nlu`` keeps only the last ``--nlu`` it is given.
        name: model file stem (default ``nlu-<hash>``, or ``split-<hash>`` with ``nlu``).
        force: train even if the model exists.
        out: progress stream (stderr by default): stage lines, then the epoch bar.
        bar_every_s: how often the epoch bar is relayed to ``out`` when it is not a
            terminal (the first bar always is).

    Returns:
        Path of the ``.tar.gz`` model.

    Raises:
        RasaSetupError: the venv is missing or training failed (the log path is given).
    """
    out = out or sys.stderr
    if not rasa_executable(settings).exists():
        raise RasaSetupError(
            f"no Rasa venv at {settings.venv_path}: run `kefu nlu install` first", code="no_venv"
        )
    nlu_paths = list(nlu) if nlu else [settings.data_path / "data"]
    if name is None:
        files = None if nlu is None else [p for n in nlu_paths for p in _walk(n)]
        # Models of other data (the evaluation split) must never look like the
        # served model to latest_model().
        name = ("nlu-" if nlu is None else "split-") + training_hash(settings, files)
    target = settings.models_path / f"{name}.tar.gz"
    if target.exists() and not force:
        print(f"nlu: model {target} is current, not retraining", file=out)
        return target
    with exclusive(settings.models_path / f".{name}.lock", f"the training of {name}", out):
        if target.exists() and not force:
            print(f"nlu: model {target} is current (trained meanwhile)", file=out)
            return target
        return _train_locked(settings, nlu_paths, name, target, out, bar_every_s)


def _train_locked(
    settings: NluSettings, nlu_paths: Sequence[Path], name: str, target: Path, out: TextIO, bar_every_s: float
) -> Path:
    settings.models_path.mkdir(parents=True, exist_ok=True)
    logs = settings.state_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"train-{name}.log"
    with tempfile.TemporaryDirectory(dir=settings.models_path, prefix=".training-") as tmp:
        cmd = [
            str(rasa_executable(settings)), "train", "nlu",
            "--config", str(settings.data_path / "config.yml"),
            "--out", tmp,
            "--fixed-model-name", name,
        ]
        cmd += ["--nlu", str(_one_folder(nlu_paths, Path(tmp) / "nlu"))]
        print(f"nlu: training {name} (log: {log_path})", file=out)
        start = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log_file:
            rc = run_streamed(cmd, out=out, env=rasa_env(settings), tee=log_file, filter_noise=True,
                              bar_every_s=bar_every_s)
        produced = Path(tmp) / f"{name}.tar.gz"
        if rc != 0 or not produced.exists():
            raise RasaSetupError(f"rasa train failed (exit {rc}); see {log_path}", code="train_failed")
        # Atomic within one filesystem: a server never sees a half-written model.
        os.replace(produced, target)
    print(f"nlu: trained {target} in {time.monotonic() - start:.0f}s", file=out)
    return target


def _one_folder(paths: Sequence[Path], folder: Path) -> Path:
    """The one ``--nlu`` argument for ``paths``: the path itself when there is one, else
    a folder holding a copy of each (numbered, so two files of the same name both stay),
    which Rasa reads whole."""
    if len(paths) == 1:
        return paths[0]
    for i, path in enumerate(paths):
        target = folder / f"{i:02d}"
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            target.mkdir(parents=True)
            shutil.copyfile(path, target / path.name)
    return folder


def _walk(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def latest_model(settings: NluSettings) -> Path | None:
    """The model for the current data if trained, else the newest model on disk."""
    current = model_path(settings)
    if current.exists():
        return current
    models = sorted(settings.models_path.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


