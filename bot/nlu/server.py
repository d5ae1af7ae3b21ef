"""Running Rasa's HTTP server: a blocking :class:`RasaServer` for the CLI and test
fixtures, and :class:`AsyncRasaServer` for ``kefu run``'s autostart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

import aiohttp

from bot.nlu.errors import RasaSetupError
from bot.nlu.settings import NluSettings
from bot.nlu.environment import install, rasa_env, rasa_executable
from bot.nlu.process import die_with_parent
from bot.nlu.training import latest_model, model_path, train

log = logging.getLogger(__name__)


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
                preexec_fn=die_with_parent,
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
