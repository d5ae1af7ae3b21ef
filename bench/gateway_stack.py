"""The whole gateway as a separate process, for benchmarks that time webhook -> reply.

Starts a private redis-server, the MongoDB-protocol server, Rasa on the newest trained
model (when there is one), a fake WeChat API in this process, and ``kefu run`` with a
generated kefu.yml; stops them all on exit. bench_conversation and bench_voice use it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.bench_ack import ACCOUNT, start, stop, wait_log
from tests.services import free_port, wait_port


@dataclass(frozen=True)
class Stack:
    port: int  # the gateway's HTTP port
    fake: Any  # channels.wechat.fake_api.FakeWeChatAPI: what the gateway sent, media to serve
    nlu: bool  # whether Rasa is in the loop


def start_stores(tmp: Path) -> tuple[list[subprocess.Popen[bytes]], int, int]:
    """A private redis-server and MongoDB-protocol server: the processes and their ports."""
    redis_port, mongo_port = free_port(), free_port()
    procs = [
        start(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(tmp)], tmp / "redis.log"),
        start([str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", ":memory:"], tmp / "mongo.log"),
    ]
    return procs, redis_port, mongo_port


@asynccontextmanager
async def gateway_stack(
    tmp: Path, *, config: Mapping[str, Any], require_nlu: bool, nlu_url: str | None = None,
) -> AsyncIterator[Stack]:
    """``config`` is merged over the generated kefu.yml (speech, pipeline...). Without a
    trained model the gateway runs with NLU off, or, with ``require_nlu``, this exits."""
    from aiohttp import web

    from bot.nlu.service import RasaServer, latest_model
    from bot.nlu.settings import NluSettings
    from channels.wechat.fake_api import FakeWeChatAPI

    nlu_settings = NluSettings.from_mapping({})
    model = latest_model(nlu_settings)
    if model is None and require_nlu:
        raise SystemExit("no trained model: run `kefu nlu install && kefu nlu train` first")
    # ``nlu_url``: a Rasa already serving, shared by runs that are compared, so that
    # both see the same NLU (and no run waits minutes for Rasa to load on a busy machine).
    rasa = RasaServer(nlu_settings, model, free_port()) if model is not None and nlu_url is None else None
    if rasa is not None:
        rasa.start()
    procs, redis_port, mongo_port = start_stores(tmp)
    fake = FakeWeChatAPI()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    try:
        if rasa is not None:
            await asyncio.to_thread(rasa.wait_ready)
        port = free_port()
        cfg = {
            "http": {"host": "127.0.0.1", "port": port},
            "redis_url": f"redis://127.0.0.1:{redis_port}/0",
            "mongo_url": f"mongodb://127.0.0.1:{mongo_port}/bench",
            "nlu": {"enabled": True, "urls": [nlu_url or rasa.url], "autostart": False}  # type: ignore[union-attr]
            if nlu_url or rasa else {"enabled": False},
            "channels": {"wechat": [{**ACCOUNT, "api_base_url": f"http://127.0.0.1:{fake_port}"}]},
            **config,
        }
        (tmp / "kefu.yml").write_text(yaml.safe_dump(cfg))
        gateway = start([sys.executable, "-m", "bot.cli", "--config", str(tmp / "kefu.yml"), "run"], tmp / "gateway.log")
        procs.append(gateway)
        await asyncio.to_thread(wait_log, tmp / "gateway.log", "gateway ready", gateway)
        await asyncio.to_thread(wait_port, port, gateway, 30)
        yield Stack(port, fake, rasa is not None)
    finally:
        for proc in procs:
            stop(proc)
        if rasa is not None:
            rasa.stop()
        await runner.cleanup()
