"""Fixtures for the NLU tests: Rasa's own venv, and fake upstreams.

The real Rasa server every package shares is in :mod:`tests.rasa`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.nlu import service
from bot.nlu.settings import NluSettings

ROOT = Path(__file__).resolve().parents[2]


def run_in_rasa(settings: NluSettings, script: str, *args: str) -> Any:
    """Run ``script`` in Rasa's own Python 3.10 venv, where Kefu's components live, and
    return the JSON it prints last. Installs the venv first if needed."""
    service.install(settings, out=sys.stderr)
    python = settings.venv_path / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", script, *args],
        env=service.rasa_env(settings), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """One shared client session per test, as the gateway would pass in."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Closed before use: the port is free and nothing accepts on it.
    return f"http://127.0.0.1:{port}"


@dataclass
class FakeRasa:
    """A fake Rasa ``/model/parse`` on loopback that records what it was asked."""

    name: str
    delay_s: float = 0.0
    status: int = 200
    body: str | None = None
    hits: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        self.hits.append(payload["text"])
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="upstream error")
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        return web.json_response(
            {
                "text": payload["text"],
                "intent": {"name": "greet", "confidence": 0.9},
                "entities": [
                    {"entity": "server", "value": self.name, "start": 0, "end": 1,
                     "confidence_entity": 1.0, "extractor": "fake"},
                ],
                "intent_ranking": [{"name": "greet", "confidence": 0.9},
                                   {"name": "goodbye", "confidence": 0.1}],
            }
        )


@pytest.fixture
async def fake_rasa() -> AsyncIterator[Callable[..., Awaitable[FakeRasa]]]:
    """Factory: ``await fake_rasa("a", delay_s=5)`` starts one fake server."""
    servers: list[TestServer] = []

    async def start(name: str, **kwargs: object) -> FakeRasa:
        fake = FakeRasa(name, **kwargs)  # type: ignore[arg-type]
        app = web.Application()
        app.router.add_post("/model/parse", fake.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        fake.url = str(server.make_url("")).rstrip("/")
        return fake

    yield start
    for server in servers:
        await server.close()


class FakeClock:
    """A monotonic clock the breaker tests move by hand instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
