"""Child processes and locks shared by the Rasa steps (install, train, serve)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TextIO


log = logging.getLogger(__name__)

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


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str, out: TextIO) -> Iterator[None]:
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


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux), so that a
    killed test run or CLI does not leave a 1.3 GB Rasa process behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: best effort only
        pass


# Terminal colour codes: Rasa ends a coloured warning with a bare reset and a carriage
# return, which must not count as a progress bar (it used to take the first bar's slot).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_streamed(
    cmd: Sequence[str],
    *,
    out: TextIO,
    env: dict[str, str] | None = None,
    tee: IO[str] | None = None,
    filter_noise: bool = False,
    bar_every_s: float = 10.0,
) -> int:
    """Run ``cmd``, relaying its output to ``out`` as progress; return the exit code.

    tqdm bars (carriage-return updates) are shown in place on a terminal and otherwise
    as a line: the first one at once, then one every ``bar_every_s``, so CI logs stay
    short but show the job is alive. A reader that follows the progress itself (the
    background first training) asks for every bar with a small ``bar_every_s``.
    """
    interactive = out.isatty()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    assert proc.stdout is not None
    start = time.monotonic()
    last_bar: float | None = None
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
                if not _ANSI.sub("", piece).strip():
                    continue
                if sep == b"\r" or "Epochs:" in piece:
                    now = time.monotonic()
                    if interactive:
                        out.write("\r" + piece[:120].ljust(120))
                        out.flush()
                    elif last_bar is None or now - last_bar >= bar_every_s:
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
