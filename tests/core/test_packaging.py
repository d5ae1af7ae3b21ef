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
