"""A clarifying question as a customer meets it: WeChat webhook in, real Rasa, replies out.

The demo base is imported with ``kefu kb import`` first, as an operator would; on it
"怎么申请发票" is too close between 开发票 and 发票改抬头 to answer outright.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.conversation.state import STATE_PREFIX
from channels.wechat.fake_api import FakeWeChatAPI
from knowledge.evaluation import DEMO_BASE
from tests.conversation.conftest import Chat, make_gateway
from tests.harness import Harness
from tests.knowledge.test_conversation import _warm, kb_import

pytestmark = pytest.mark.slow


@pytest.fixture
async def demo_bot(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, tmp_path: Path,  # noqa: F811
) -> Harness:
    assert await kb_import(DEMO_BASE, tmp_path, redis_url, mongo_url) == 0
    await _warm(rasa_url)
    return await make_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, [rasa_url], workers=2)


async def test_close_entries_are_offered_a_number_picks_one_and_neither_is_collected(
    demo_bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    chat = Chat(demo_bot, "oKbChoice")
    offer = (await chat.say("怎么申请发票"))[0]
    assert "您是想问哪一个？" in offer and "1. 开发票" in offer and "2. 发票改抬头" in offer and "都不是" in offer
    assert "参考" not in offer  # a clarification is no answer
    # The offer is in the saved state (Redis, written through to MongoDB): any worker takes the reply.
    raw = await demo_bot.runtime.redis.get(STATE_PREFIX + "wechat:demo:oKbChoice")
    assert raw is not None
    saved = json.loads(raw)
    assert saved["offer"]["entries"] == ["invoice-request", "invoice-change"]

    answer = (await chat.say("2"))[0]
    assert "参考：发票改抬头。" in answer and "转人工" in answer
    answers = demo_bot.runtime.store.db["kb_answers"]
    assert await answers.count_documents({"entry": "invoice-change", "conversation": "wechat:demo:oKbChoice"}) == 1
    # The picked answer is a knowledge answer like any other: "不是这个" rejects it.
    assert "没帮上忙" in (await chat.say("不是这个"))[0]
    missed = demo_bot.runtime.store.db["missed_turns"]
    rejected = await missed.find_one({"reason": "knowledge_rejected", "entry": "invoice-change"})
    assert rejected is not None and rejected["text"] == "怎么申请发票"

    # Offered again, "都不是" is a rejection kept for the trainer, and no answer.
    assert "1. 开发票" in (await chat.say("怎么申请发票"))[0]
    declined = (await chat.say("都不是"))[0]
    assert "都不是您要问的" in declined and "转人工" in declined and "参考" not in declined
    doc = await missed.find_one({"reason": "knowledge_rejected", "rejection": "都不是"})
    assert doc is not None
    assert (doc["text"], doc["entry"], doc["conversation"]) == ("怎么申请发票", "invoice-request", "wechat:demo:oKbChoice")
    # The offer is spent: "2" now is a new turn, not a pick.
    assert "参考：发票改抬头。" not in (await chat.say("2"))[0]
    # The knowledge lines name the turn by a stand-in, never the customer's id.
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "oKbChoice" in r.getMessage()]
    print("transcript zh:", offer, answer, declined, sep="\n")
