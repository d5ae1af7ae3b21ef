"""The trainer's pages live across web processes: a missed turn kept by one process and
a label proposed, approved or reverted in either reach the open trainer pages of both,
through Redis (the console's one subscription), with the counts and the label's state
and trail; customer text never rides the announcement."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from admin.roles import Role
from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from knowledge.missed import MissedTurn
from knowledge.news import CHANNEL
from tests.console.conftest import PASSWORD, Browserless, ConsoleRig
from tests.console.live import EventReader
from tests.console.test_trainer import kb_of, rig, seed  # noqa: F401  (the gateway with knowledge on)
from tests.harness import gateway_config


async def test_a_second_web_process_hears_of_missed_turns_and_label_changes(
    rig: ConsoleRig, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,  # noqa: F811
    redis: Any,
) -> None:
    kb = await seed(rig)  # four unlabelled turns, three of them asking about the weekend
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    cfg["knowledge"] = {"enabled": True}
    other = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))  # process B
    await rig.console.users.create("rex", Role.TRAINER, PASSWORD)
    tina = await rig.person("tina", Role.TRAINER)  # on process A
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        rex = Browserless(str(other.server.make_url("")).rstrip("/"), http)
        assert (await rex.sign_in("rex")).status == 303
        page_b = await EventReader.open(http, rex.base + "/admin/trainer/events")
        page_a = await EventReader.open(tina.http, rig.base + "/admin/trainer/events")
        try:
            first = await page_b.next()  # the counts as of the subscription
            assert (first["type"], first["unlabelled"], first["proposed"], first["labels"]) == ("trainer", 4, 0, [])

            # Process A keeps a missed turn (as a worker does): B's page hears of it.
            heard: list[Any] = []
            listener = redis.pubsub(ignore_subscribe_messages=True)
            await listener.subscribe(CHANNEL)
            await kb.missed.add(MissedTurn(reason="fallback", text="发票怎么开", language="zh", conversation="wechat:demo:o7"))
            assert (await page_b.next(where=lambda e: e["unlabelled"] == 5))["proposed"] == 0
            async for message in listener.listen():
                heard.append(json.loads(message["data"]))
                break
            await listener.aclose()
            assert heard[0]["what"] == "missed" and "发票" not in json.dumps(heard, ensure_ascii=False)

            # Tina proposes a label in A: B's page gets it with its trail.
            form = {"kind": "entry", "entry": "hours", "texts": "你们周末上班吗\n周末有人值班吗"}
            assert (await tina.post("/admin/trainer/labels", form)).status == 303
            proposed = await page_b.next(where=lambda e: e["labels"])
            [label] = proposed["labels"]
            assert (label["status"], label["by"], proposed["proposed"], proposed["unlabelled"]) == ("proposed", "tina", 1, 2)
            assert [(s["by"], s["action"]) for s in label["trail"]] == [("tina", "labelled")]

            # Rex approves it in B: A's page hears of it.
            assert (await rex.post(f"/admin/trainer/labels/{label['id']}/approve")).status == 303
            approved = await page_a.next(where=lambda e: any(x["status"] == "approved" for x in e["labels"]))
            [label] = approved["labels"]
            assert label["reviewed_by"] == "rex" and approved["proposed"] == 0
            assert [(s["by"], s["action"], s["after"]) for s in label["trail"]] == [
                ("tina", "labelled", "entry hours · proposed"), ("rex", "approved", "approved")]

            assert (await rex.post(f"/admin/trainer/labels/{label['id']}/revert")).status == 303
            reverted = await page_a.next(where=lambda e: any(x["status"] == "reverted" for x in e["labels"]))
            assert reverted["unlabelled"] == 5  # the sentences are back in the groups
        finally:
            page_a.close()
            page_b.close()


async def test_the_pages_carry_the_live_hooks(rig: ConsoleRig) -> None:  # noqa: F811
    await seed(rig)
    tina = await rig.person("tina", Role.TRAINER)
    missed = await (await tina.get("/admin/trainer")).text()
    assert 'data-events="/admin/trainer/events"' in missed and 'data-page="missed"' in missed and 'data-shown="4"' in missed and "trainer.js" in missed
    labels = await (await tina.get("/admin/trainer/labels")).text()
    assert 'data-page="labels"' in labels and "status_approved" in labels and "trainer.js" in labels
    script = await tina.get("/admin/static/trainer.js")
    assert script.status == 200 and "innerHTML" not in await script.text()
