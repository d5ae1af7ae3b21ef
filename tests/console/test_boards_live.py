"""The repair-operations, data-requests and carrier boards follow their data live, in every
web process: the tickets' owner, the data-rights service and the review skill announce their writes on Redis
(one publish per burst), the console's one subscription per process relays them, and an
open page gets its board rendered again in its reader's language."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from admin.live_boards import BoardWatch, Reader
from admin.roles import Role
from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from skills.connectors.marketplace import Review
from tests.console.conftest import PASSWORD, Browserless, ConsoleRig
from tests.console.live import EventReader
from tests.console.test_marketing import seed_customers, services
from tests.harness import gateway_config


def html(event: dict[str, Any]) -> str:
    return str(event["html"])


@pytest.fixture
async def mia(
    rig: ConsoleRig, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str
) -> AsyncIterator[Browserless]:
    """A marketer signed in to process B, which serves only the web side on the same Redis
    and MongoDB; the changes the tests make go through process A (the rig's skills, its
    data-rights service, its engine and its export job)."""
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    other = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))
    await rig.console.users.create("mia", Role.MARKETER, PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        person = Browserless(str(other.server.make_url("")).rstrip("/"), http)
        assert (await person.sign_in("mia")).status == 303
        yield person


async def test_boards_in_a_second_web_process_follow_tickets_and_data_requests(rig: ConsoleRig, mia: Browserless) -> None:
    prefs, sk = services(rig)
    await seed_customers(prefs)
    http = mia.http
    repair = await EventReader.open(http, mia.base + "/admin/marketing/repair/events")
    requests = await EventReader.open(http, mia.base + "/admin/marketing/data-requests/events")
    carriers = await EventReader.open(http, mia.base + "/admin/marketing/carriers/events")
    try:
        first = await repair.next()  # the board as of the subscription
        assert first["type"] == "board" and "servicenow failed" not in html(first)

        # The dispatch's outside step fails on a new ticket.
        ticket = await sk.tickets.open(customer="wechat:demo:oX", conversation="wechat:demo:oX", source_message="m-1",
                                       fields={"device_model": "XK-1"})
        await sk.tickets.record("m-1", {"attention": {"reason": "servicenow failed", "at": time.time()},
                                        "engineer": {"id": "e7", "name": "王工"}, "status": "assigned"},
                                [{"at": time.time(), "step": "incident", "ok": False}])
        seen = await repair.next(where=lambda e: "servicenow failed" in html(e))
        assert f'data-ticket="{ticket["number"]}"' in html(seen) and "incident ✗" in html(seen)
        assert re.search(r'data-engineer="e7"><th>王工</th><td>1</td><td>0</td>', html(seen))
        assert "需要关注的工单" in html(seen)  # Mia's language (the console's default, Chinese)

        # The engineer sets off: one status change, the load follows.
        await sk.tickets.change_status("m-1", "on_the_way", at=time.time(), by="engineer:e7")
        await repair.next(where=lambda e: re.search(r'data-engineer="e7"><th>王工</th><td>1</td><td>1</td>', html(e)) is not None)

        # Fifty writes in a row (the dispatch's retry round) publish once per gathering
        # interval, not fifty times.
        announcer = sk.tickets.announcer
        assert announcer is not None
        await announcer.flush()
        before, t0 = announcer.published, time.monotonic()
        for i in range(50):
            await sk.tickets.add_note("m-1", f"note {i}", by="bot")
        elapsed = time.monotonic() - t0
        await announcer.flush()
        published = announcer.published - before
        assert 1 <= published <= 2 + elapsed / announcer.gather_s and published < 10, (published, elapsed)
        await repair.next(where=lambda e: "note" in html(e))

        # A customer's export: listed while it is built, then ready.
        assert (await requests.next())["type"] == "board"
        export_id, _ = await prefs.rights.export_my_data("c-li", via="api")
        ready = await requests.next(where=lambda e: f'data-request="{export_id}" data-status="ready"' in html(e))
        assert "可下载" in html(ready) and "c-li" in html(ready)

        # A bad review about a late parcel (no carrier named: "unknown"): the counters
        # move, the board follows.
        assert 'data-carrier="unknown"' not in html(await carriers.next())
        await sk.reviews.ingest_and_process(Review("amazon", "R1", 1, "Arrived 4 days late. Not happy."), via="csv")
        board = await carriers.next(where=lambda e: 'data-carrier="unknown"' in html(e))
        assert re.search(r'data-carrier="unknown">.*?</th><td>1</td><td>100.0%</td>', html(board)), html(board)
    finally:
        repair.close()
        requests.close()
        carriers.close()
    # The page itself renders the same board.
    page = await (await mia.get("/admin/marketing/repair")).text()
    assert 'data-live="board"' in page and f'data-ticket="{ticket["number"]}"' in page


async def test_an_open_board_is_read_again_on_its_own_while_pages_are_open(rig: ConsoleRig) -> None:
    # What changes with time alone (a ticket turns overdue after a day) shows without a write.
    loads = 0

    async def load() -> dict[str, Any]:
        nonlocal loads
        loads += 1
        return {"rows": []}

    watch = BoardWatch("test", "kefu:test:never", "marketing/_data_requests_board.html", load, rig.console.pages, every_s=0.2)
    sub = watch.subscribe(Reader("en", "UTC"))
    try:
        async with asyncio.timeout(5):
            for _ in range(3):  # the subscription's own read, then two on the clock
                frame = await sub.queue.get()
                assert frame is not None and "Data requests" in frame.payload["html"]
        assert loads >= 3
        watch.unsubscribe(sub)
        await asyncio.sleep(1.5)
        settled = loads
        await asyncio.sleep(1.0)
        assert loads == settled  # no page open: nothing read
    finally:
        watch.close()
