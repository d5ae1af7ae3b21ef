"""Live updates across web processes: events go through Redis, not process memory."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from admin.roles import Role
from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.console.conftest import CSRF_META, PASSWORD, Browserless, ConsoleRig
from tests.console.live import EventReader
from tests.console.test_inbox import CID, ask_for_a_person
from tests.harness import gateway_config


async def test_a_second_web_process_sees_what_the_first_one_did(
    rig: ConsoleRig, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> None:
    # Process B serves only the web side (no workers), on the same Redis and MongoDB.
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    other = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))
    await rig.console.users.create("bob", Role.AGENT, PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        bob = Browserless(str(other.server.make_url("")).rstrip("/"), http)
        assert (await bob.sign_in("bob")).status == 303
        inbox_b = await EventReader.open(http, bob.base + "/admin/events")
        alice = await rig.person("alice")  # on process A
        inbox_a = await EventReader.open(alice.http, rig.base + "/admin/events")

        await ask_for_a_person(rig)  # webhook and worker in A
        queued = await inbox_b.next(where=lambda e: e["owner"] == "queue")
        assert queued["waiting"]["conversation"] == CID

        page = await (await bob.get("/admin/inbox")).text()
        assert CID in page and CSRF_META.search(page)
        assert (await bob.post(f"/admin/conversations/{CID}/claim")).status == 303  # claimed in B
        claimed = await inbox_a.next(where=lambda e: e["type"] == "claimed")
        assert claimed["owner"] == "agent:bob"  # A's page hears about B's claim
        inbox_a.close()
        inbox_b.close()


async def test_pages_are_told_to_resync_after_the_subscription_was_lost(rig: ConsoleRig, redis: Any) -> None:
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    inbox = await EventReader.open(alice.http, rig.base + "/admin/events")
    await redis.client_kill_filter(_type="pubsub")  # Redis drops every subscriber connection
    event = await inbox.next(timeout_s=10)
    assert event["type"] == "resync"
    await rig.console.hub.ready.wait()
    await ask_for_a_person(rig)  # and live events flow again
    assert (await inbox.next(where=lambda e: e["owner"] == "queue"))["conversation"] == CID
    inbox.close()


RENDERED = re.compile(r'data-rendered="([0-9.]+)"')


async def test_a_page_whose_stream_opens_late_is_told_to_catch_up(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    # The page is rendered; its stream opens only after a customer joined the queue (the
    # browser was still loading the script): the event went out before the page listened.
    page = await (await alice.get("/admin/inbox")).text()
    match = RENDERED.search(page)
    assert match is not None and CID not in page
    before = rig.console.hub.queue_changed_at
    await ask_for_a_person(rig)
    await wait_relayed(rig, before)
    late = await EventReader.open(alice.http, rig.base + "/admin/events?since=" + match.group(1))
    assert (await late.next())["type"] == "resync"  # the page re-reads the queue
    late.close()

    # A page rendered after the last event has nothing to catch up: no resync, the next
    # event is the next real one.
    page = await (await alice.get("/admin/inbox")).text()
    match = RENDERED.search(page)
    assert match is not None and CID in page
    fresh = await EventReader.open(alice.http, rig.base + "/admin/events?since=" + match.group(1))
    await ask_for_a_person(rig, "oOther")
    assert (await fresh.next())["owner"] == "queue"
    fresh.close()

    # Junk in `since` is ignored, never an error.
    for junk in ("nan", "inf", "-5", "yesterday", "9" * 400):
        resp = await alice.get("/admin/events?since=" + junk, headers={"Accept": "text/event-stream"})
        assert resp.status == 200
        resp.close()


async def wait_relayed(rig: ConsoleRig, before: float) -> None:
    """Until the console's hub has relayed an event after ``before`` (it comes through Redis)."""
    for _ in range(250):
        if rig.console.hub.queue_changed_at > before:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the hub never relayed the event")
