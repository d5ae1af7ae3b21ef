"""The live fan-out's cost does not grow with the open pages, a process without pages
reads no events, and a console process serves pages and streams without the webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from admin.live import INBOX_BATCH_S, WRITE_SLICE
from admin.roles import Role
from bot.app import build_app
from bot.config import settings_from_mapping
from bot.conversation.events import CHANNEL, ConversationEvent, ConversationEvents
from channels.wechat.fake_api import FakeWeChatAPI
from tests.console.conftest import PASSWORD, Browserless, ConsoleRig, make_rig
from tests.console.live import EventReader
from tests.console.test_inbox import ask_for_a_person
from tests.harness import SAFE_ACCOUNT, gateway_config


async def zscores(redis: Any) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_zscore", {}).get("calls", 0))


async def test_one_queue_read_per_event_whatever_the_number_of_open_inboxes(rig: ConsoleRig, redis: Any) -> None:
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    calls: dict[int, int] = {}
    for pages, sender in ((1, "oFewPages"), (30, "oManyPages")):
        inboxes = [await EventReader.open(alice.http, rig.base + "/admin/events") for _ in range(pages)]
        before = await zscores(redis)
        await ask_for_a_person(rig, sender)
        for inbox in inboxes:
            queued = await inbox.next(where=lambda e: e["owner"] == "queue")
            assert queued["waiting"]["conversation"] == f"wechat:demo:{sender}"
        calls[pages] = await zscores(redis) - before
        for inbox in inboxes:
            inbox.close()
    # The queue row is read once per event by the process's hub, not once per page.
    assert calls[30] == calls[1] >= 1


async def test_an_inbox_gets_a_moment_s_queue_changes_in_one_write(rig: ConsoleRig, redis: Any) -> None:
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    response = await alice.http.get(rig.base + "/admin/events", headers={"Accept": "text/event-stream"})
    assert response.status == 200
    assert (await response.content.readchunk())[0].startswith(b"retry: 2000")
    events = ConversationEvents(redis)
    for who in ("a", "b", "c"):
        await events.publish(ConversationEvent("claimed", f"wechat:demo:o{who}", owner=f"agent:{who}", agent=who))
    data, end_of_chunk = await asyncio.wait_for(response.content.readchunk(), 5)
    assert end_of_chunk  # one HTTP chunk: the three claims went out in one write
    frames = [f for f in data.decode().split("\n\n") if f]
    assert [json.loads(f.split("data: ", 1)[1])["agent"] for f in frames] == ["a", "b", "c"]
    response.close()


async def test_many_inboxes_are_written_in_slices_and_each_gets_every_change_in_order(rig: ConsoleRig, redis: Any) -> None:
    # More open inboxes than one write slice: the hub writes them over several loop turns
    # (so that the webhooks it also serves are not held back), and a change made while an
    # earlier one is still going out must not overtake it on any page.
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    pages = 2 * WRITE_SLICE + 5  # (the client session holds at most 100 connections)
    inboxes = [await EventReader.open(alice.http, rig.base + "/admin/events") for _ in range(pages)]
    events = ConversationEvents(redis)
    for round_ in range(3):
        for who in ("a", "b"):
            await events.publish(ConversationEvent("claimed", f"wechat:demo:o{who}{round_}", owner=f"agent:{who}", agent=who))
        await asyncio.sleep(INBOX_BATCH_S * 1.5)  # the next change goes out while this one may still be written
    for inbox in inboxes:
        got = [(await inbox.next(where=lambda e: e["type"] == "claimed"))["conversation"] for _ in range(6)]
        assert got == [f"wechat:demo:o{who}{r}" for r in range(3) for who in ("a", "b")]
        inbox.close()


async def test_a_console_process_serves_pages_and_streams_but_no_webhooks(
    rig: ConsoleRig, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> None:
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    console = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="console"))
    webhook = await console.post(f"/wechat/{SAFE_ACCOUNT['account']}", data=b"<xml/>")
    assert webhook.status == 404
    assert (await console.get("/api/openapi.json")).status == 404
    await rig.console.users.create("bob", Role.AGENT, PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        bob = Browserless(str(console.server.make_url("")).rstrip("/"), http)
        assert (await bob.sign_in("bob")).status == 303
        assert (await bob.get("/admin/inbox")).status == 200
        inbox = await EventReader.open(http, bob.base + "/admin/events")
        await ask_for_a_person(rig, "oConsoleRole")  # the webhook and the worker of the other process
        queued = await inbox.next(where=lambda e: e["owner"] == "queue")
        assert queued["waiting"]["conversation"] == "wechat:demo:oConsoleRole"
        inbox.close()


async def subscribers(redis: Any) -> int:
    counts = await redis.pubsub_numsub(CHANNEL)
    return int(counts[0][1])


async def test_a_process_reads_events_only_while_it_has_open_pages(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> None:
    rig = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, console={"live_idle_s": 0.3})
    try:
        alice = await rig.person("alice")
        await until(lambda: subscribers(redis), 0)  # no page open: the webhook process reads no events
        inbox = await EventReader.open(alice.http, rig.base + "/admin/events")
        assert await subscribers(redis) == 1  # listening again before the stream opened
        await ask_for_a_person(rig, "oIdle")
        assert (await inbox.next(where=lambda e: e["owner"] == "queue"))["conversation"] == "wechat:demo:oIdle"
        inbox.close()
        await until(lambda: subscribers(redis), 0)
    finally:
        for http in rig.sessions:
            await http.close()


async def until(probe: Callable[[], Awaitable[int]], value: int, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while await probe() != value:
            await asyncio.sleep(0.05)
