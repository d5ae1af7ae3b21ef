"""Gateway processes started the way an operator starts them: ``kefu run --role ...``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


class GatewayProcess:
    def __init__(self, config: dict[str, Any], role: str, workdir: Path, name: str, *, port: int | None = None) -> None:
        self.config_path = workdir / f"{name}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        self.role = role
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "--config", str(self.config_path), "run", "--role", self.role]
            + (["--port", str(self.port)] if self.port else []),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, nothing acknowledged."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    async def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Wait until the process answers /healthz on its port."""
        import asyncio

        import aiohttp

        assert self.port, "no port to probe"
        async with aiohttp.ClientSession() as http:
            for _ in range(int(timeout_s * 10)):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.config_path.stem} not healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
