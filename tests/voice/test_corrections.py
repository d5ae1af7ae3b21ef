"""A voice note read back and corrected is kept for the trainer, through the WeChat webhook
with real Whisper and real Rasa: the transcript read back, what the customer meant, the
voice note's message key (its audio is in the voice archive) and how it was corrected."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer

from channels.wechat.fake_api import FakeWeChatAPI
from tests.conversation.conftest import Chat
from tests.speech.conftest import Clips, clips, model_path  # noqa: F401
from tests.voice.test_voice_notes import send_voice, voice_gateway

MEANT = "My XK-8800 fridge is not cooling at all"


async def test_a_transcript_the_customer_corrects_is_kept_for_the_trainer(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str, model_path: str, clips: Clips,  # noqa: F811
) -> None:
    h = await voice_gateway(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa_url, model_path, low_confidence=1.0)
    kept = h.runtime.store.db["transcript_corrections"]

    # Said it was wrong, then said it again (typed).
    chat = Chat(h, "oFixA")
    await send_voice(h, "oFixA", clips.read("en_model.amr"))
    check = (await chat.replies(0, 1, timeout_s=60))[0]
    assert check.startswith("I heard:")
    retry = (await chat.say("no, that's incorrect"))[0]
    assert "say it again" in retry
    await chat.say(MEANT)
    note = await h.runtime.store.messages.find_one({"sender": "oFixA", "direction": "in", "kind": "voice"})
    assert note is not None
    doc = await kept.find_one({"_id": note["_id"]})
    assert doc is not None, "the corrected transcript is kept under the voice note's message key"
    assert doc["heard"] == note["transcript"]["text"].strip() and doc["meant"] == MEANT
    assert doc["how"] == "said_again" and doc["status"] == "new" and doc["conversation"] == note["conversation"]
    said = await h.runtime.store.messages.find_one({"sender": "oFixA", "direction": "in", "text": MEANT})
    assert said is not None and doc["correction"] == said["_id"]

    # Answered the read-back with the sentence itself.
    chat = Chat(h, "oFixB")
    await send_voice(h, "oFixB", clips.read("en_model.amr"))
    await chat.replies(0, 1, timeout_s=60)
    await chat.say(MEANT)
    note = await h.runtime.store.messages.find_one({"sender": "oFixB", "direction": "in", "kind": "voice"})
    assert note is not None
    doc = await kept.find_one({"_id": note["_id"]})
    assert doc is not None and doc["how"] == "restated" and doc["meant"] == MEANT

    # Confirmed: nothing to correct.
    chat = Chat(h, "oFixC")
    await send_voice(h, "oFixC", clips.read("en_model.amr"))
    await chat.replies(0, 1, timeout_s=60)
    await chat.say("yes")
    assert await kept.count_documents({"conversation": {"$regex": "oFixC"}}) == 0
    assert await kept.count_documents({}) == 2
