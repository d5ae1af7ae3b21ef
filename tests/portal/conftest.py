"""The real gateway (signed WeChat webhook, workers, portal) on loopback and customers
who open their portal the way they meet it: "我的账户" in WeChat, then the link."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import PORTAL_DEPS, build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from portal.deps import PortalDeps
from portal.state import PORTAL, Portal
from tests.console.conftest import Browserless
from tests.harness import Harness, gateway_config, next_msg_id

LINK = re.compile(r"/portal/s/[A-Za-z0-9_\-]+\.\d+\.[A-Za-z0-9_\-]+")


@dataclass(eq=False)
class Visitor(Browserless):
    """One person's browser session with the portal (own cookie jar), no JavaScript."""

    async def page(self, path: str) -> str:
        resp = await self.get(path)
        assert resp.status == 200, (path, resp.status, await resp.text())
        return await resp.text()

    async def open_link(self, link: str) -> aiohttp.ClientResponse:
        """Open a sign-in link and tap "continue" on the page it shows."""
        page = await self.get(link)
        if page.status != 200:
            return page
        resp = await self.post(link)
        if resp.status == 303:
            await self.get("/portal/")  # the new session's CSRF token
        return resp


@dataclass
class PortalRig:
    harness: Harness
    server: TestServer
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def portal(self) -> Portal:
        return next(sub[PORTAL] for sub in self.harness.client.app._subapps if PORTAL in sub)

    @property
    def deps(self) -> PortalDeps:
        return self.harness.client.app[PORTAL_DEPS]

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def visitor(self) -> Visitor:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        return Visitor(self.base, http)

    async def ask_link(self, openid: str, text: str = "我的账户") -> tuple[str, str]:
        """The customer writes in WeChat; returns (the reply the fake WeChat API got, the link path)."""
        before = len(self.harness.fake.sent_to(openid))
        resp = await self.harness.say(openid, text, next_msg_id())
        assert resp.status == 200
        for _ in range(250):
            sent = self.harness.fake.sent_to(openid)
            if len(sent) > before:
                reply = str(sent[-1]["text"]["content"])
                found = LINK.search(reply)
                assert found, reply
                return reply, found.group()
            await asyncio.sleep(0.02)
        raise AssertionError("no reply reached the fake WeChat API")

    async def customer(self, openid: str) -> tuple[Visitor, str]:
        """A signed-in portal visitor for the WeChat customer ``openid`` and their customer id."""
        _, link = await self.ask_link(openid)
        who = self.visitor()
        resp = await who.open_link(link)
        assert resp.status == 303, await resp.text()
        customer = await self.deps.prefs.find_by_address("wechat", "demo", openid)
        assert customer is not None
        return who, customer


async def make_rig(aiohttp_client: Any, fake: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, **extra: Any) -> PortalRig:
    fake_url = str(fake[1].make_url(""))
    cfg = gateway_config(redis_url, mongo_url, fake_url)
    cfg["portal"] = {"wechat_web_auth": ["demo"], "wechat_authorize_url": fake_url}
    cfg.update(extra)
    client: TestClient[Any, Any] = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return PortalRig(Harness(client=client, fake=fake[0]), client.server)


@pytest.fixture
async def rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> AsyncIterator[PortalRig]:
    r = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url)
    yield r
    for http in r.sessions:
        await http.close()
