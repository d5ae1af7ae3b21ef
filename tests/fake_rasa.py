"""A stand-in for Rasa's HTTP API on loopback that loads, warms up and goes away on cue.

What the cold-start tests need and a real Rasa cannot be made to do on demand: stay
"loading" (connections answered 503, as a proxy in front of a loading Rasa does) until
the test says so, then take ``cold_parse_s`` over its first parse, as a freshly loaded
DIET model does, then answer at once with the intent scripted for each text. With
``model=False`` it is up but has no model (a Rasa started before any training): ``/status``
answers with ``model_file`` null and parses are refused with 409, until ``model`` is set.
``PUT /model`` loads another model file as Rasa does (``loads`` keeps each file asked
for, ``/status`` names the last one); with ``refuse_load`` it answers 500 and keeps its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class LoadingRasa:
    intents: dict[str, str]
    cold_parse_s: float = 3.0
    loaded: bool = False
    model: bool = True
    parses: list[str] = field(default_factory=list)
    warm: bool = False
    loads: list[str] = field(default_factory=list)
    refuse_load: bool = False
    model_file: str = "fake.tar.gz"
    url: str = ""
    _server: TestServer | None = None

    async def start(self) -> LoadingRasa:
        app = web.Application()
        app.router.add_post("/model/parse", self._parse)
        app.router.add_get("/status", self._status)
        app.router.add_put("/model", self._load)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _status(self, request: web.Request) -> web.Response:
        if not self.loaded:
            return web.Response(status=503, text="loading")
        return web.json_response({"model_file": self.model_file if self.model else None, "num_active_training_jobs": 0})

    async def _load(self, request: web.Request) -> web.Response:
        if self.refuse_load:
            return web.json_response({"message": "could not load the model"}, status=500)
        model_file = str((await request.json())["model_file"])
        self.loads.append(model_file)
        self.model_file, self.model = model_file, True
        return web.Response(status=204)

    async def _parse(self, request: web.Request) -> web.Response:
        if not self.loaded:
            return web.Response(status=503, text="loading")
        if not self.model:
            return web.json_response({"message": "No model loaded"}, status=409)
        text = str((await request.json())["text"])
        if not self.warm:
            await asyncio.sleep(self.cold_parse_s)
            self.warm = True
        self.parses.append(text)
        intent = self.intents.get(text, "out_of_scope")
        body: dict[str, Any] = {
            "text": text,
            "intent": {"name": intent, "confidence": 0.95},
            "entities": [],
            "intent_ranking": [{"name": intent, "confidence": 0.95}],
        }
        return web.json_response(body)
