"""The real gateway (webhook, workers, console) on loopback, and signed-in console users."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.state import CONSOLE, Console
from admin.roles import Role
from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, gateway_config

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@dataclass(eq=False)
class Browserless:
    """One person's HTTP session with the console (own cookie jar), no JavaScript."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        resp = await self.http.get(self.base + path, allow_redirects=False, **kw)
        if resp.content_type == "text/html":
            found = CSRF_META.search(await resp.text())
            if found and found.group(1):
                self.csrf = found.group(1)
        return resp

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kw: Any) -> aiohttp.ClientResponse:
        form = dict(data or {})
        if csrf:
            form["_csrf"] = self.csrf
        return await self.http.post(self.base + path, data=form, allow_redirects=False, **kw)

    async def sign_in(self, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        page = await self.http.get(self.base + "/admin/signin")
        found = CSRF_FIELD.search(await page.text())
        assert found, "the sign-in form carries a CSRF token"
        self.csrf = found.group(1)
        resp = await self.post("/admin/signin", {"name": name, "password": password, "next": "/admin/"})
        if resp.status == 303:
            await self.get("/admin/account")  # the new session's CSRF token
        return resp


@dataclass
class ConsoleRig:
    harness: Harness
    server: TestServer
    sessions: list[aiohttp.ClientSession]

    @property
    def console(self) -> Console:
        return next(sub[CONSOLE] for sub in self.harness.client.app._subapps if CONSOLE in sub)

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def person(self, name: str | None = None, role: Role = Role.AGENT) -> Browserless:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        who = Browserless(self.base, http)
        if name is not None:
            if await self.console.users.get(name) is None:
                await self.console.users.create(name, role, PASSWORD)
            resp = await who.sign_in(name)
            assert resp.status == 303, await resp.text()
        return who


async def stored(rig: ConsoleRig, query: dict[str, Any]) -> dict[str, Any]:
    """Wait until the worker stored a message matching ``query``."""
    for _ in range(250):
        found = await rig.harness.runtime.store.messages.find_one(query)
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no message matching {query} was stored")


async def stored_inbound(rig: ConsoleRig, conversation: str, text: str) -> dict[str, Any]:
    """Wait until the worker stored the customer's message containing ``text``."""
    return await stored(rig, {"conversation": conversation, "direction": "in", "text": {"$regex": text}})


async def make_rig(aiohttp_client: Any, fake: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, **extra: Any) -> ConsoleRig:
    cfg = gateway_config(redis_url, mongo_url, str(fake[1].make_url("")))
    cfg.update(extra)
    client: TestClient[Any, Any] = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return ConsoleRig(Harness(client=client, fake=fake[0]), client.server, [])


@pytest.fixture
async def rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> AsyncIterator[ConsoleRig]:
    r = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url)
    yield r
    for http in r.sessions:
        await http.close()
