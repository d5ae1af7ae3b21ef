"""A gateway that has served and shut down leaves nothing behind in the process.

A whole-suite run in one process grew to 15 GB: every test's gateway stayed alive after
the test, with its Runtime, stores and knowledge encoder. These tests start and stop the
gateway several times, serving a customer turn each time, and ask the garbage collector
whether the apps and their Runtimes are gone.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, forget_served_apps, gateway_config

ROUNDS = 3


async def _serve_once(fake: FakeWeChatAPI, server: TestServer, redis_url: str, mongo_url: str, sender: str) -> list[weakref.ref[Any]]:
    """One gateway's whole life: start, answer one customer, stop; weak references to
    what it held."""
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, str(server.make_url(""))), env={})
    app = build_app(settings)
    async with TestClient(TestServer(app)) as client:
        harness = Harness(client=client, fake=fake)
        sent = len(fake.sent)
        assert (await harness.say(sender, "你好")).status == 200
        await fake.wait_sent(sent + 1)
        held = [weakref.ref(app), weakref.ref(harness.runtime), weakref.ref(harness.runtime.redis)]
    return held


async def test_stopped_gateways_are_freed(
    redis: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> None:
    fake, server = fake_wechat
    held: list[weakref.ref[Any]] = []
    for i in range(ROUNDS):
        held += await _serve_once(fake, server, redis_url, mongo_url, f"oFreed{i}")
    # One more turn of the loop: the callback that resumed this task after the last
    # gateway's shutdown still holds what that shutdown awaited, until the next step.
    await asyncio.sleep(0)
    forget_served_apps()
    gc.collect()
    alive = [type(ref()).__name__ for ref in held if ref() is not None]
    assert alive == [], f"still alive after {ROUNDS} gateways stopped: {alive}"
