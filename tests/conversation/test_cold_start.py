"""A gateway whose NLU is still loading: nobody gets a "busy" reply for a short wait,
the keyword layer answers what it can, and every waiting message is answered in order
as soon as NLU has warmed up, through the signed WeChat webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.fake_rasa import LoadingRasa
from tests.harness import Harness, gateway_config

INTENTS = {
    "where is my repair?": "ask_repair_status",
    "thanks a lot mate": "thank",
    "ok bye for now then": "goodbye",
}
STATUS_NONE = "can't find a repair ticket"
BUSY = "busy"


@pytest.fixture
async def rasa() -> AsyncIterator[LoadingRasa]:
    fake = await LoadingRasa(INTENTS).start()
    yield fake
    await fake.close()


async def gateway_with(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, nlu_url: str, **nlu: Any
) -> Harness:
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")), workers=2)
    cfg["nlu"] = {"enabled": True, "urls": [nlu_url], "autostart": False, "timeout_s": 2.0, "reset_after_s": 0.5, **nlu}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return Harness(client=client, fake=fake_wechat[0])


def texts(bot: Harness, sender: str) -> list[str]:
    return [s["text"]["content"] for s in bot.fake.sent_to(sender)]


async def until(predicate: Any, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_messages_wait_quietly_for_nlu_then_all_are_answered_in_order(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa: LoadingRasa
) -> None:
    bot = await gateway_with(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa.url, quiet_wait_s=60)
    ready = await bot.client.get("/readyz")
    nlu_check = (await ready.json())["checks"]["nlu"]
    assert ready.status == 503 and not nlu_check["ok"] and "warming up" in nlu_check["detail"]

    # The keyword layer answers at once, NLU or not.
    await bot.say("oHello", "你好")
    await until(lambda: len(texts(bot, "oHello")) == 1, 5)
    assert "有什么可以帮您" in texts(bot, "oHello")[0]

    for sender in ("oA", "oB", "oC"):
        assert (await bot.say(sender, "where is my repair?")).status == 200
    await bot.say("oD", "thanks a lot mate")
    await bot.say("oD", "ok bye for now then")
    await asyncio.sleep(2.0)
    for sender in ("oA", "oB", "oC", "oD"):
        assert texts(bot, sender) == [], "a short wait for NLU gets no busy reply"

    rasa.loaded = True  # the model is loaded; its first parse is slow (graph warm-up)
    await until(lambda: all(len(texts(bot, s)) == 1 for s in ("oA", "oB", "oC")) and len(texts(bot, "oD")) == 2, 15)
    for sender in ("oA", "oB", "oC"):
        assert STATUS_NONE in texts(bot, sender)[0]
    thank, bye = texts(bot, "oD")
    assert "welcome" in thank.lower() and "good day" in bye.lower()
    # No customer's parse paid for the warm-up: one warm-up parse, then one per message.
    assert rasa.parses.count("你好") == 1 and len(rasa.parses) == 6
    assert (await bot.client.get("/readyz")).status == 200
    for sender in ("oA", "oB", "oC", "oD"):
        assert not any(BUSY in t for t in texts(bot, sender))


async def test_long_outage_gets_one_holding_reply_then_the_answer(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa: LoadingRasa
) -> None:
    bot = await gateway_with(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa.url, quiet_wait_s=1, max_wait_s=60)
    await bot.say("oLong", "where is my repair?")
    await until(lambda: len(texts(bot, "oLong")) == 1, 5)
    assert BUSY in texts(bot, "oLong")[0]
    await asyncio.sleep(1.5)
    assert len(texts(bot, "oLong")) == 1, "one holding reply, not one per check"
    rasa.loaded = True
    await until(lambda: len(texts(bot, "oLong")) == 2, 15)
    assert STATUS_NONE in texts(bot, "oLong")[1]


async def test_a_message_that_waited_too_long_goes_to_a_person_who_is_told(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa: LoadingRasa
) -> None:
    bot = await gateway_with(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa.url, quiet_wait_s=0.5, max_wait_s=2)
    await bot.say("oGone", "where is my repair?")
    await until(lambda: len(texts(bot, "oGone")) == 2, 10)
    holding, handed = texts(bot, "oGone")
    assert BUSY in holding and "colleague" in handed
    state = await bot.runtime.states.get("wechat:demo:oGone")
    assert state is not None and state.owner == "queue"


async def test_unfinished_entries_are_released_on_shutdown(redis: Any) -> None:
    """A restarted process takes over what the previous one held at once, not after
    claim_idle_ms (one minute by default)."""
    from bot.queue import StreamGroup

    group = StreamGroup(redis, "kefu:test:release", "workers", claim_idle_ms=60_000)
    await group.ensure_group()
    await redis.xadd("kefu:test:release", {"m": b"one"})
    [entry] = await group.read("old:w0", count=10, block_ms=10)
    assert await group.read("new:w0", count=10, block_ms=10) == []
    await group.release("old:w0", [entry.entry_id])
    taken = await group.read("new:w0", count=10, block_ms=10)
    assert [e.payload for e in taken] == [b"one"]


async def test_nlu_that_cannot_start_is_not_waited_for_quietly(rasa: LoadingRasa) -> None:
    """When Rasa could not be started at all, a message's wait is not a short one: the
    customer is told at once rather than after the quiet wait."""
    import aiohttp

    from bot.nlu.client import NluClient
    from bot.nlu.readiness import NluReadiness, Wait

    async with aiohttp.ClientSession() as http:
        readiness = NluReadiness(NluClient(http, [rasa.url]), quiet_wait_s=60, max_wait_s=600)
        now = readiness.now()
        assert readiness.decide(now) is Wait.QUIET
        readiness.not_coming_soon()
        assert readiness.decide(now) is Wait.HOLDING
        rasa.loaded = True
        stop = asyncio.Event()
        watcher = asyncio.create_task(readiness.run(stop))
        assert await readiness.wait(10) and readiness.decide(now) is Wait.READY
        stop.set()
        await watcher
