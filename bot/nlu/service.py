"""Rasa NLU as its own service: install its venv, train its model, run its server.

Rasa 3.6 supports Python 3.8-3.10 only, while the gateway runs on 3.11+, so Rasa lives
in a venv of its own made from a CPython 3.10 and the gateway only talks HTTP to it.

Everything here is synchronous and blocking (subprocesses, file hashing): call it from
CLI code, sync test fixtures or an executor, never from an event-loop thread. The one
exception is :class:`AsyncRasaServer`, built on asyncio's subprocess API, for
``kefu run``'s autostart.

Rasa writes its config, caches (jieba, TensorFlow, matplotlib) and temp files under
``settings.state_path`` (``var/rasa``): nothing lands in the user's home.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TextIO

import aiohttp

from bot.nlu.errors import RasaSetupError
from bot.nlu.settings import NluSettings

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

# Rasa and TensorFlow print pages of deprecation warnings that hide the progress.
_NOISE = (
    "Warning",
    "warnings.warn",
    "declare_namespace",
    "setParseAction",
    "parseString",
    "resetCache",
    "Base: DeclarativeMeta",
    "  ).set",
    "  self._parser",
    "Implementing implicit namespace",
    "import pkg_resources",
    "from jax import",
)


# ------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _exclusive(lock_path: Path, what: str, out: TextIO) -> Iterator[None]:
    """Hold an exclusive lock so that parallel test runs or CI jobs sharing one venv
    or models folder wait for one install/training instead of all doing it at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"nlu: waiting for another process doing {what} ...", file=out, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so that a
    killed test run or CLI does not leave a 1.3 GB Rasa process behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: best effort only
        pass


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
    with _exclusive(lock, f"the install of {settings.venv_path}", out):
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
    _run_streamed([str(python), "-m", "venv", str(building)], out=out)
    pip = [str(building / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    start = time.monotonic()
    rc = _run_streamed([*pip, "install", "--progress-bar", "off", "-r", str(req)], out=out)
    if rc != 0:
        raise RasaSetupError(f"pip install -r {req} failed (exit {rc})", code="pip_failed")
    if _run_streamed([*pip, "check"], out=out) != 0:
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


# --------------------------------------------------------------------------- train


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
) -> Path:
    """Train the NLU model unless one for the same data hash already exists.

    Args:
        nlu: training files or folders (default ``<data_path>/data``); the held-out
            evaluation passes its own split here.
        name: model file stem (default ``nlu-<hash>``, or ``split-<hash>`` with ``nlu``).
        force: train even if the model exists.
        out: progress stream (stderr by default): stage lines, then the epoch bar.

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
    with _exclusive(settings.models_path / f".{name}.lock", f"the training of {name}", out):
        if target.exists() and not force:
            print(f"nlu: model {target} is current (trained meanwhile)", file=out)
            return target
        return _train_locked(settings, nlu_paths, name, target, out)


def _train_locked(
    settings: NluSettings, nlu_paths: Sequence[Path], name: str, target: Path, out: TextIO
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
        for p in nlu_paths:
            cmd += ["--nlu", str(p)]
        print(f"nlu: training {name} (log: {log_path})", file=out)
        start = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log_file:
            rc = _run_streamed(cmd, out=out, env=rasa_env(settings), tee=log_file, filter_noise=True)
        produced = Path(tmp) / f"{name}.tar.gz"
        if rc != 0 or not produced.exists():
            raise RasaSetupError(f"rasa train failed (exit {rc}); see {log_path}", code="train_failed")
        # Atomic within one filesystem: a server never sees a half-written model.
        os.replace(produced, target)
    print(f"nlu: trained {target} in {time.monotonic() - start:.0f}s", file=out)
    return target


def _walk(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _run_streamed(
    cmd: Sequence[str],
    *,
    out: TextIO,
    env: dict[str, str] | None = None,
    tee: IO[str] | None = None,
    filter_noise: bool = False,
) -> int:
    """Run ``cmd``, relaying its output to ``out`` as progress; return the exit code.

    tqdm bars (carriage-return updates) are shown in place on a terminal and as one
    line every ~10 s otherwise, so CI logs stay short but show the job is alive.
    """
    interactive = out.isatty()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None
    start = time.monotonic()
    last_bar = 0.0
    buf = b""
    try:
        while chunk := os.read(proc.stdout.fileno(), 4096):
            buf += chunk
            # Split on both \n and \r so tqdm's in-place updates come out as pieces.
            while True:
                idx = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
                if idx < 0:
                    break
                piece, sep, buf = buf[:idx].decode(errors="replace"), buf[idx : idx + 1], buf[idx + 1 :]
                if tee is not None:
                    tee.write(piece + "\n")
                if not piece.strip():
                    continue
                if sep == b"\r" or "Epochs:" in piece:
                    now = time.monotonic()
                    if interactive:
                        out.write("\r" + piece[:120].ljust(120))
                        out.flush()
                    elif now - last_bar >= 10:
                        out.write(f"[{now - start:5.0f}s] {piece.strip()[:140]}\n")
                        out.flush()
                        last_bar = now
                    continue
                if filter_noise and any(n in piece for n in _NOISE):
                    continue
                if interactive:
                    out.write("\r")
                out.write(piece + "\n")
                out.flush()
        if buf and tee is not None:
            tee.write(buf.decode(errors="replace"))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    rc = proc.wait()
    if interactive:
        out.write("\n")
    return rc


# --------------------------------------------------------------------------- serve


def latest_model(settings: NluSettings) -> Path | None:
    """The model for the current data if trained, else the newest model on disk."""
    current = model_path(settings)
    if current.exists():
        return current
    models = sorted(settings.models_path.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def serve_command(settings: NluSettings, model: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``rasa run`` command line for one NLU server process."""
    return [
        str(rasa_executable(settings)), "run",
        "--enable-api",
        "-i", host,
        "-p", str(port),
        "--model", str(model),
    ]


def status_ok(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a Rasa server answers ``GET /status`` with a loaded model (blocking)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=timeout_s) as resp:
            if resp.status != 200:
                return False
            body = json.loads(resp.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(body, dict) and bool(body.get("model_file"))


class RasaServer:
    """One ``rasa run`` process on loopback (blocking API; see :class:`AsyncRasaServer`).

    Use as a context manager, or call :meth:`start` then :meth:`stop`. The process runs
    in its own process group so that stopping it also ends anything it spawned.
    """

    def __init__(self, settings: NluSettings, model: Path, port: int, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.model = model
        self.port = port
        self.host = host
        self.url = f"http://{host}:{port}"
        self.log_path = settings.state_path / "logs" / f"rasa-{port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the process (returns at once; use :meth:`wait_ready`)."""
        if self._proc is not None:
            raise RuntimeError("already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            self._proc = subprocess.Popen(
                serve_command(self.settings, self.model, self.port, self.host),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=rasa_env(self.settings),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout_s: float = 180.0, *, out: TextIO | None = None) -> None:
        """Block until ``/status`` answers with a loaded model.

        Raises:
            RasaSetupError: the process exited or did not answer in time.
        """
        if self._proc is None:
            raise RuntimeError("not started")
        start = time.monotonic()
        last_note = start
        while not status_ok(self.url):
            if (rc := self._proc.poll()) is not None:
                raise RasaSetupError(
                    f"rasa exited with {rc} before answering; tail of {self.log_path}:\n"
                    + _tail(self.log_path),
                    code="serve_failed",
                )
            now = time.monotonic()
            if now - start > timeout_s:
                self.stop()
                raise RasaSetupError(
                    f"rasa did not answer {self.url}/status within {timeout_s:.0f}s; see {self.log_path}",
                    code="serve_timeout",
                )
            if out is not None and now - last_note >= (5 if out.isatty() else 15):
                # In place on a terminal; one line per 15 s in logs (and when several
                # servers wait side by side).
                end = "" if out.isatty() else "\n"
                out.write(f"\rnlu: waiting for {self.url} ({now - start:.0f}s){end}")
                out.flush()
                last_note = now
            time.sleep(0.5)
        if out is not None:
            out.write(f"\rnlu: {self.url} ready after {time.monotonic() - start:.0f}s\n")

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self) -> int:
        """Block until the process exits; return its exit code."""
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout_s``. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> RasaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncRasaServer:
    """The same ``rasa run`` process, managed with asyncio's subprocess API.

    For ``kefu run`` (autostart): nothing here blocks the event loop. Install and train
    first (they are blocking: run them in an executor).
    """

    def __init__(self, settings: NluSettings, model: Path, port: int, host: str = "127.0.0.1") -> None:
        self.settings = settings
        self.model = model
        self.port = port
        self.url = f"http://{host}:{port}"
        self.host = host
        self.log_path = settings.state_path / "logs" / f"rasa-{port}.log"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn the process (returns at once; use :meth:`wait_ready`)."""
        loop = asyncio.get_running_loop()
        # Opening the log and creating var/ dirs touch the disk: keep them off the loop.
        env, log_fd = await loop.run_in_executor(None, self._prepare)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *serve_command(self.settings, self.model, self.port, self.host),
                stdout=log_fd,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)

    def _prepare(self) -> tuple[dict[str, str], int]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        return rasa_env(self.settings), fd

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float = 180.0) -> None:
        """Wait until ``GET /status`` answers with a loaded model.

        Raises:
            RasaSetupError: the process exited or did not become ready in time.
        """
        if self._proc is None:
            raise RuntimeError("not started")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not await async_status_ok(session, self.url):
            if self._proc.returncode is not None:
                raise RasaSetupError(
                    f"rasa exited with {self._proc.returncode}; see {self.log_path}", code="serve_failed"
                )
            if loop.time() > deadline:
                await self.stop()
                raise RasaSetupError(f"rasa did not become ready in {timeout_s:.0f}s", code="serve_timeout")
            await asyncio.sleep(0.5)

    async def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout_s``. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except asyncio.TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()


async def async_status_ok(session: aiohttp.ClientSession, url: str, timeout_s: float = 1.0) -> bool:
    """Whether a Rasa server answers ``GET /status`` with a loaded model (async)."""
    try:
        async with session.get(
            f"{url.rstrip('/')}/status", timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            if resp.status != 200:
                return False
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False
    return isinstance(body, dict) and bool(body.get("model_file"))


async def autostart(settings: NluSettings, session: aiohttp.ClientSession) -> list[AsyncRasaServer]:
    """For ``kefu run``: start Rasa on the configured loopback URLs if none answers.

    Does nothing (returns ``[]``) when any URL answers or ``settings.autostart`` is
    false. Serves the model for the current data if trained, else the newest model on
    disk (with a warning: run ``kefu nlu train``), and trains only when there is no
    model at all: a gateway start must not quietly become a 5-10 minute CPU-bound
    training. Install/training are blocking and run in the default executor. The
    caller owns the returned servers and stops them on shutdown.

    Raises:
        RasaSetupError: install, training or start-up failed.
    """
    for url in settings.urls:
        if await async_status_ok(session, url):
            return []
    if not settings.autostart:
        return []
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, install, settings)
    model = await loop.run_in_executor(None, latest_model, settings)
    if model is None:
        model = await loop.run_in_executor(None, train, settings)
    elif model != await loop.run_in_executor(None, model_path, settings):
        log.warning(
            "nlu: serving %s, trained from older data; run `kefu nlu train` to update", model.name
        )
    servers: list[AsyncRasaServer] = []
    try:
        for url in settings.urls:
            parts = urllib.parse.urlsplit(url)
            if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
                continue  # only loopback URLs with an explicit port are ours to start
            server = AsyncRasaServer(settings, model, parts.port, parts.hostname)
            await server.start()
            servers.append(server)
        await asyncio.gather(*(s.wait_ready(session) for s in servers))
    except BaseException:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        raise
    return servers


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_servers(
    settings: NluSettings, model: Path, ports: Sequence[int], *, out: TextIO | None = None
) -> Iterator[list[RasaServer]]:
    """Start one Rasa process per port in parallel, wait for all, stop all on exit."""
    servers = [RasaServer(settings, model, p) for p in ports]
    try:
        for s in servers:
            s.start()
        errors: list[BaseException] = []

        def wait(s: RasaServer) -> None:
            try:
                s.wait_ready(out=out)
            except BaseException as exc:  # collected and re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=wait, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        yield servers
    finally:
        for s in servers:
            s.stop()
