"""Real Redis and a real MongoDB-protocol server on loopback for the test session.

Set KEFU_TEST_REDIS_URL / KEFU_TEST_MONGO_URL to use servers you run (a real mongod,
say); otherwise a private redis-server and SecantusDB (in-memory) are started on free
ports and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port}")


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    if url := os.environ.get("KEFU_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def mongo_server(tmp: Path) -> Iterator[str]:
    if url := os.environ.get("KEFU_TEST_MONGO_URL"):
        yield url
        return
    binary = Path(sys.executable).with_name("secantusd-py")
    port = free_port()
    log = (tmp / "secantus.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:", "--log-level", "WARNING"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, proc, 60)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
