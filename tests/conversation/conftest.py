"""The gateway with real Rasa: a conversation harness over the WeChat channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, gateway_config


@dataclass
class Chat:
    """Push a customer's message, read what the customer receives."""

    harness: Harness
    sender: str

    async def say(self, text: str, *, expect: int = 1, timeout_s: float = 15.0) -> list[str]:
        before = len(self.harness.fake.sent_to(self.sender))
        resp = await self.harness.say(self.sender, text)
        assert resp.status == 200
        return await self.replies(before, expect, timeout_s)

    async def replies(self, before: int, expect: int, timeout_s: float = 15.0) -> list[str]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.harness.fake.sent_to(self.sender)) < before + expect:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        if expect == 0:
            await asyncio.sleep(1.0)  # room for a wrong reply to show up
        return [s["text"]["content"] for s in self.harness.fake.sent_to(self.sender)[before:]]


class RasaProxy:
    """A loopback hop in front of the real Rasa that the test can take down and back up."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.request(request.method, self.upstream + request.path_qs, data=await request.read()) as resp:
                return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")

    async def up(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}"

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def make_gateway(aiohttp_client: Any, fake: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, nlu_urls: list[str], **pipeline: Any) -> Harness:
    cfg = gateway_config(redis_url, mongo_url, str(fake[1].make_url("")), **pipeline)
    cfg["nlu"] = {"enabled": True, "urls": nlu_urls, "autostart": False, "timeout_s": 5.0, "reset_after_s": 0.5}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return Harness(client=client, fake=fake[0])


@pytest.fixture
async def bot(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa_url: str) -> Harness:  # noqa: F811
    return await make_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, [rasa_url], workers=2)
