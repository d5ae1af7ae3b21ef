"""Knowledge answers as a customer meets them: WeChat webhook in, real Rasa, replies out.

The base is imported with ``kefu kb import`` first, as an operator would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from bot.cli import main as kefu
from channels.wechat.fake_api import FakeWeChatAPI
from tests.conversation.conftest import Chat, make_gateway
from tests.harness import Harness
from tests.knowledge.conftest import FIXTURES

pytestmark = pytest.mark.slow


@pytest.fixture
async def kb_bot(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, tmp_path: Path,  # noqa: F811
) -> Harness:
    code = await kb_import(FIXTURES / "warranty.md", tmp_path, redis_url, mongo_url)
    assert code == 1  # the fixture's entry without an answer is reported; the others load
    assert await (await _db(mongo_url)).count_documents({}) == 5
    await _warm(rasa_url)
    return await make_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, [rasa_url], workers=2)


async def kb_import(base: Path, tmp_path: Path, redis_url: str, mongo_url: str) -> int:
    """``kefu kb import`` of ``base``, as an operator runs it; its exit code."""
    config = tmp_path / "kefu.yml"
    config.write_text(yaml.safe_dump({"redis_url": redis_url, "mongo_url": mongo_url}), encoding="utf-8")
    # The operator's command, in a thread: it runs its own event loop.
    return await asyncio.to_thread(kefu, ["--config", str(config), "kb", "import", str(base), "--no-progress"])


async def _warm(rasa_url: str) -> None:
    """Rasa's first parse after loading a model takes seconds (graph warm-up): take it
    here, so that no customer turn waits past the gateway's NLU timeout."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{rasa_url}/model/parse", json={"text": "你好"}, timeout=aiohttp.ClientTimeout(total=60)) as resp:
            assert resp.status == 200


async def _db(mongo_url: str) -> Any:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    return client.get_default_database()["kb_entries"]


async def test_a_warranty_question_is_answered_from_the_imported_base_in_chinese(kb_bot: Harness) -> None:
    reply = (await Chat(kb_bot, "oKbZh").say("XK-8800的保修期是几年？"))[0]
    assert "整机保修三年" in reply and "参考：XK-8800 保修政策。" in reply and "转人工" in reply
    print("transcript zh:", reply)


async def test_a_warranty_question_is_answered_from_the_imported_base_in_english(kb_bot: Harness) -> None:
    reply = (await Chat(kb_bot, "oKbEn").say("How many years of warranty does the XK-8800 have?"))[0]
    assert "three-year warranty" in reply and "(From: XK-8800 warranty." in reply and "agent" in reply
    print("transcript en:", reply)


async def test_an_unknown_question_still_falls_back_and_is_kept_for_the_trainer(kb_bot: Harness) -> None:
    reply = (await Chat(kb_bot, "oKbUnknown").say("今天天气怎么样"))[0]
    assert "帮不上忙" in reply and "参考" not in reply
    missed = kb_bot.runtime.store.db["missed_turns"]
    doc = await missed.find_one({"conversation": "wechat:demo:oKbUnknown"})
    assert doc is not None and doc["reason"] in ("out_of_scope", "fallback") and doc["text"] == "今天天气怎么样"


async def test_a_rejected_answer_is_collected(kb_bot: Harness) -> None:
    chat = Chat(kb_bot, "oKbReject")
    assert "整机保修三年" in (await chat.say("XK-8800保修多久？"))[0]
    reply = (await chat.say("不是这个"))[0]
    assert "没帮上忙" in reply
    doc = await kb_bot.runtime.store.db["missed_turns"].find_one({"reason": "knowledge_rejected"})
    assert doc is not None
    assert (doc["entry"], doc["text"], doc["rejection"], doc["conversation"]) == (
        "warranty-xk8800", "XK-8800保修多久？", "不是这个", "wechat:demo:oKbReject"
    )
    # Said again, with no answer just given, it is no rejection of anything.
    again = (await chat.say("不是这个"))[0]
    assert "没帮上忙" not in again
    assert await kb_bot.runtime.store.db["missed_turns"].count_documents({"reason": "knowledge_rejected"}) == 1
