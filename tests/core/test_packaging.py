"""The package's metadata builds without warnings and states its licence as SPDX."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.no_blockbuster
def test_metadata_has_an_spdx_licence_and_no_setuptools_warning(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "var", "*.egg-info", "__pycache__", "tests"))
    (tmp_path / "meta").mkdir()
    script = (
        "import sys, setuptools.build_meta as b;"
        "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script, str(tmp_path / "meta")],
        cwd=source, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "project.license" not in done.stderr and "License classifiers are deprecated" not in done.stderr
    dist_info = tmp_path / "meta" / done.stdout.strip().splitlines()[-1]
    metadata = (dist_info / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata


def test_the_image_copies_every_package_the_wheel_ships() -> None:
    """The Dockerfile lists its source folders by hand; one left out makes an image that
    builds and then fails at `kefu run` (the console's admin imports webui, the root imports
    knowledge and portal)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        line.split()[1]
        for line in (ROOT / "docker" / "kefu" / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
