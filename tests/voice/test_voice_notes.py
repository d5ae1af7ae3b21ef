"""Voice notes through the WeChat channel end to end: AMR in, Whisper, Rasa, reply out."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import voice_xml
from tests.conversation.conftest import Chat
from tests.harness import Harness, gateway_config, next_msg_id
from tests.speech.conftest import Clips, clips, model_path  # noqa: F401


async def voice_gateway(aiohttp_client: Any, fake: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa: str, model: str, **speech: Any) -> Harness:
    cfg = gateway_config(redis_url, mongo_url, str(fake[1].make_url("")))
    cfg["nlu"] = {"enabled": True, "urls": [rasa], "autostart": False, "timeout_s": 5.0}
    cfg["speech"] = {"enabled": True, "engine": "faster", "model_path": model, "vocabulary": ["XK-8800"], **speech}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return Harness(client=client, fake=fake[0])


async def send_voice(h: Harness, sender: str, audio: bytes, fmt: str = "amr") -> None:
    media_id = h.fake.add_media(audio)
    resp = await h.post_xml(voice_xml(sender, media_id, next_msg_id(), fmt=fmt))
    assert resp.status == 200


async def test_voice_note_becomes_a_repair_report(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, model_path: str, clips: Clips,  # noqa: F811
) -> None:
    h = await voice_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa_url, model_path, low_confidence=0.0)
    chat = Chat(h, "oVoice")
    await send_voice(h, "oVoice", clips.read("en_model.amr"))
    reply = (await chat.replies(0, 1, timeout_s=60))[0]
    assert "address" in reply.lower() or "what is wrong" in reply.lower()
    doc = await h.runtime.store.messages.find_one({"sender": "oVoice", "direction": "in"})
    assert doc is not None and doc["kind"] == "voice"
    transcript = doc["transcript"]
    assert "cooling" in transcript["text"].lower() and transcript["engine"] == "faster" and transcript["duration_s"] > 1


async def test_low_confidence_is_read_back_and_confirmed(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, model_path: str, clips: Clips,  # noqa: F811
) -> None:
    h = await voice_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa_url, model_path, low_confidence=1.0)
    chat = Chat(h, "oUnsure")
    await send_voice(h, "oUnsure", clips.read("en_model.amr"))
    check = (await chat.replies(0, 1, timeout_s=60))[0]
    assert check.startswith("I heard:") and "cooling" in check.lower()
    after = (await chat.say("yes"))[0]
    assert "address" in after.lower() or "what is wrong" in after.lower()


async def test_bad_and_overlong_voice_notes_get_a_clear_answer(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, model_path: str, clips: Clips,  # noqa: F811
) -> None:
    h = await voice_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa_url, model_path, max_duration_s=1.0)
    chat = Chat(h, "oBad")
    await send_voice(h, "oBad", b"\x00\x01 definitely not audio " * 20)
    # No text to tell the language from: the bot answers in its default, Chinese.
    assert "无法识别" in (await chat.replies(0, 1, timeout_s=30))[0]
    await send_voice(h, "oBad", clips.read("en.amr"))
    assert "太长" in (await chat.replies(1, 1, timeout_s=30))[0]
    await asyncio.sleep(0.5)
    assert await h.runtime.redis.xlen("kefu:inbound") == 0  # nothing stuck in the queue


async def test_text_is_answered_while_a_note_transcribes_and_never_stalls_it(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, model_path: str, clips: Clips,  # noqa: F811
) -> None:
    # Text turns pause transcription (speech.text_first). A text queued behind a voice
    # note of its own conversation must not: it would pause the very note it waits for.
    # max_pause_s is far past the timeouts, so such a stall would fail this test.
    h = await voice_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa_url, model_path, low_confidence=0.0, max_pause_s=300.0)
    same, other = Chat(h, "oTalker"), Chat(h, "oBystander")
    await send_voice(h, "oTalker", clips.read("en_model.amr"))
    assert (await h.say("oTalker", "thanks")).status == 200
    assert (await other.say("hello", timeout_s=30))  # another conversation, during the note
    replies = await same.replies(0, 2, timeout_s=60)
    assert len(replies) == 2, replies
    assert "address" in replies[0].lower() or "what is wrong" in replies[0].lower()  # the note first
