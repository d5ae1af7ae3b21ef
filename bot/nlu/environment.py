"""Rasa's own Python 3.10 venv: find an interpreter, install the pinned requirements,
and the environment every Rasa subprocess runs in.

Rasa 3.6 supports Python 3.8-3.10 only, while the gateway runs on 3.11+, so Rasa lives
in a venv of its own and the gateway only talks HTTP to it. Blocking: call from CLI
code, sync test fixtures or an executor. Rasa writes its config, caches and temp files
under ``settings.state_path`` (``var/rasa``): nothing lands in the user's home.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO


from bot.nlu.errors import RasaSetupError
from bot.nlu.settings import NluSettings
from bot.nlu.process import exclusive, run_streamed

RASA_VERSION = "3.6.21"
REQUIREMENTS_FILE = "requirements-rasa.txt"
#: Written into the venv after a complete install: the sha256 of the pinned
#: requirements it was built from. A venv without it (or with another hash) is rebuilt.
VENV_MARKER = ".kefu-requirements.sha256"
ENV_PYTHON = "KEFU_RASA_PYTHON"

log = logging.getLogger(__name__)

_PYTHON_HELP = (
    "Rasa 3.6 needs CPython 3.10 (it does not support 3.11+). Install one of:\n"
    "  - pyenv:  pyenv install 3.10.13   (found under ~/.pyenv/versions/3.10.*)\n"
    "  - uv:     pip install uv           (then Kefu runs `uv python install 3.10`)\n"
    "  - a python3.10 on PATH (Debian 12 has none in apt; Ubuntu 22.04: apt install\n"
    "    python3.10 python3.10-venv)\n"
    f"or point {ENV_PYTHON} at a python3.10 executable."
)


# --------------------------------------------------------------------------- python


def _probe_python(exe: str) -> Path | None:
    """The real interpreter behind ``exe`` (shims resolved) if it is CPython 3.10."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[:2] == (3, 10)); print(sys.executable)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) < 2 or lines[0] != "True":
        return None
    return Path(lines[1])


def find_python310(*, allow_uv_install: bool = True) -> Path:
    """Find a CPython 3.10 to build Rasa's venv from.

    Looks, in order, at ``$KEFU_RASA_PYTHON``, ``python3.10`` on PATH, pyenv's
    ``$PYENV_ROOT/versions/3.10.*`` (default ``~/.pyenv``), then asks ``uv`` to install
    one if uv is present.

    Raises:
        RasaSetupError: none found; the message says exactly what to install.
    """
    candidates: list[str] = []
    if explicit := os.environ.get(ENV_PYTHON):
        candidates.append(explicit)
    if on_path := shutil.which("python3.10"):
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    # Newest patch release first.
    candidates += sorted(
        glob.glob(str(pyenv_root / "versions" / "3.10.*" / "bin" / "python")),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
        reverse=True,
    )
    for exe in candidates:
        if found := _probe_python(exe):
            return found
    uv = shutil.which("uv")
    if uv and allow_uv_install:
        print("nlu: no Python 3.10 found, installing one with uv ...", file=sys.stderr)
        subprocess.run([uv, "python", "install", "3.10"], check=False)
        found_by_uv = subprocess.run(
            [uv, "python", "find", "3.10"], capture_output=True, text=True, check=False
        )
        if found_by_uv.returncode == 0 and (found := _probe_python(found_by_uv.stdout.strip())):
            return found
    raise RasaSetupError(f"no CPython 3.10 found.\n{_PYTHON_HELP}", code="no_python310")


# -------------------------------------------------------------------------- install


def requirements_path(settings: NluSettings) -> Path:
    """The committed, fully pinned requirement set for Rasa's venv."""
    return settings.data_path / REQUIREMENTS_FILE


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rasa_executable(settings: NluSettings) -> Path:
    """Path of the ``rasa`` entry point inside the venv."""
    return settings.venv_path / "bin" / "rasa"


def venv_is_current(settings: NluSettings) -> bool:
    """Whether the venv exists, finished installing, and matches the pinned set."""
    marker = settings.venv_path / VENV_MARKER
    req = requirements_path(settings)
    return (
        rasa_executable(settings).exists()
        and marker.exists()
        and req.exists()
        and marker.read_text().strip() == _sha256_file(req)
    )


def install(settings: NluSettings, *, force: bool = False, out: TextIO | None = None) -> Path:
    """Create Rasa's venv from the pinned requirements (a no-op if already current).

    Pip's output streams to ``out`` (stderr by default) as progress.

    Returns:
        The venv path.

    Raises:
        RasaSetupError: no Python 3.10, or pip failed.
    """
    out = out or sys.stderr
    req = requirements_path(settings)
    if not req.exists():
        raise RasaSetupError(f"{req} is missing: run from the repository root", code="no_requirements")
    if not force and venv_is_current(settings):
        print(f"nlu: Rasa venv {settings.venv_path} is current", file=out)
        return settings.venv_path
    lock = settings.venv_path.with_name(f".{settings.venv_path.name}.lock")
    with exclusive(lock, f"the install of {settings.venv_path}", out):
        # Someone else may have finished the same install while we waited.
        if not force and venv_is_current(settings):
            print(f"nlu: Rasa venv {settings.venv_path} is current", file=out)
            return settings.venv_path
        return _install_locked(settings, req, out)


def _install_locked(settings: NluSettings, req: Path, out: TextIO) -> Path:
    python = find_python310()
    venv = settings.venv_path
    print(f"nlu: creating Rasa venv {venv} from {python}", file=out)
    # Build beside the target and rename at the end, so that an interrupted install
    # never leaves a half-populated venv that looks usable.
    building = venv.with_name(venv.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    run_streamed([str(python), "-m", "venv", str(building)], out=out)
    pip = [str(building / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    start = time.monotonic()
    rc = run_streamed([*pip, "install", "--progress-bar", "off", "-r", str(req)], out=out)
    if rc != 0:
        raise RasaSetupError(f"pip install -r {req} failed (exit {rc})", code="pip_failed")
    if run_streamed([*pip, "check"], out=out) != 0:
        raise RasaSetupError("pip check found broken requirements in the Rasa venv", code="pip_check")
    (building / VENV_MARKER).write_text(_sha256_file(req) + "\n")
    shutil.rmtree(venv, ignore_errors=True)
    building.rename(venv)
    # venv scripts carry the absolute build path in their shebangs: fix them up.
    _rewrite_shebangs(venv / "bin", str(building), str(venv))
    print(f"nlu: Rasa venv ready in {time.monotonic() - start:.0f}s", file=out)
    return venv


def _rewrite_shebangs(bin_dir: Path, old: str, new: str) -> None:
    old_b, new_b = os.fsencode(old), os.fsencode(new)
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old_b in data[:4096]:
            script.write_bytes(data.replace(old_b, new_b))
    activate = [bin_dir / n for n in ("activate", "activate.csh", "activate.fish")]
    for path in activate:
        if path.exists():
            path.write_text(path.read_text().replace(old, new))
    cfg = bin_dir.parent / "pyvenv.cfg"
    if cfg.exists():
        cfg.write_text(cfg.read_text().replace(old, new))


def rasa_env(settings: NluSettings) -> dict[str, str]:
    """Environment for every Rasa subprocess: no telemetry, state kept under var/."""
    state = settings.state_path.resolve()
    home, tmp = state / "home", state / "tmp"
    for d in (home, tmp):
        d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        HOME=str(home),
        TMPDIR=str(tmp),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        MPLCONFIGDIR=str(home / ".matplotlib"),
        # Rasa's training cache defaults to ./.rasa in the working directory.
        RASA_CACHE_DIRECTORY=str(state / "cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        # Deprecation noise off; UserWarnings stay (Rasa reports misaligned entity
        # annotations that way).
        PYTHONWARNINGS="ignore::DeprecationWarning",
        PYTHONUNBUFFERED="1",
    )
    # Only Kefu's own Rasa components (nlu_data/components) go on Rasa's path: a
    # gateway PYTHONPATH must not leak into Rasa's interpreter.
    env["PYTHONPATH"] = str(components_path(settings).resolve())
    env.pop("VIRTUAL_ENV", None)
    return env


def components_path(settings: NluSettings) -> Path:
    """Folder holding Kefu's custom Rasa components (the ``kefu_rasa`` package)."""
    return settings.data_path / "components"


