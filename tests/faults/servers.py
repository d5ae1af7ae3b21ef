"""A Redis and a MongoDB-protocol server of a test's own, which can be killed (Redis
also frozen) and brought back on the same port with their data.

Unlike the session servers they persist to disk (Redis: AOF with fsync; the MongoDB-
protocol server: its storage directory), so a restart finds what was there: the point
is an outage, not data loss.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.services import free_port, wait_port


class ServerProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, 60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class RedisProcess(ServerProcess):
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not on PATH"
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir),
        ]


class MongoProcess(ServerProcess):
    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/kefu_outage?retryWrites=false"

    def command(self) -> list[str]:
        binary = Path(sys.executable).with_name("secantusd-py")
        return [str(binary), "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", str(self.data_dir), "--log-level", "WARNING"]
