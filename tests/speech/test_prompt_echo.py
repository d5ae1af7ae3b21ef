"""The decoding prompt never comes back as a transcript: short synthetic Mandarin notes
(espeak-ng ``cmn-latn-pinyin``), silence and noise, on the real Whisper weights, and a
short voice note through the WeChat webhook."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from channels.wechat.fake_api import FakeWeChatAPI
from speech.decode import decode_audio
from speech.engines import load_engine
from speech.language import PROMPT_MIN_S, initial_prompt, without_prompt_echo
from speech.settings import SpeechSettings
from tests.speech.conftest import encode, read_pcm16

pytestmark = pytest.mark.slow

SHORT_PINYIN = ("ni3 hao3", "wei2 xiu1", "xie4 xie4", "bu4 zhi4 leng3", "ren2 gong1", "hao3 de5")
PROMPT_BITS = ("普通话", "句子", "产品型号", "型号：", "Product names")


def _prompt_free(text: str) -> bool:
    return not any(bit in text for bit in PROMPT_BITS)


@pytest.fixture(scope="module")
def short_notes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("short-notes")
    notes: dict[str, Path] = {}
    for pinyin in SHORT_PINYIN:
        wav = folder / (pinyin.replace(" ", "_") + ".wav")
        subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "150", "-w", str(wav), pinyin], check=True)
        amr = wav.with_suffix(".amr")
        encode(read_pcm16(wav, 8000), 8000, amr, "amr", "libopencore_amrnb", 12200)
        notes[pinyin] = amr
    return notes


@pytest.fixture(scope="module")
def recognize(model_path: str) -> Callable[..., Any]:
    engines: dict[tuple[str, ...], Any] = {}

    def run(samples: Any, language: str = "zh", vocabulary: tuple[str, ...] = ("XK-8800",)) -> Any:
        key = (language, *vocabulary)
        if key not in engines:
            engines[key] = load_engine(SpeechSettings.from_mapping({"model_path": model_path, "language": language, "vocabulary": list(vocabulary)}))
        return engines[key].recognize(samples)

    return run


def test_short_mandarin_notes_never_come_back_as_the_prompt(short_notes: dict[str, Path], recognize: Callable[..., Any]) -> None:
    for pinyin, path in short_notes.items():
        samples = decode_audio(path.read_bytes()).samples
        assert len(samples) / 16_000 < PROMPT_MIN_S
        for vocabulary in ((), ("XK-8800",)):
            heard = recognize(samples, "zh", vocabulary)
            assert _prompt_free(heard.text), (pinyin, vocabulary, heard.text)
            assert "XK-8800" not in heard.text, (pinyin, heard.text)


@pytest.mark.parametrize("language", ["zh", "auto-zh-en", "en"])
def test_silence_and_noise_give_no_text(recognize: Callable[..., Any], language: str) -> None:
    rng = np.random.default_rng(7)
    for name, samples in (
        ("silence", np.zeros(32_000, dtype=np.float32)),
        ("noise", (rng.standard_normal(48_000) * 0.05).astype(np.float32)),
        ("loud noise", (rng.standard_normal(48_000) * 0.3).astype(np.float32)),
    ):
        heard = recognize(samples, language)
        assert heard.text == "" and heard.confidence == 0.0, (name, heard.text)


def test_echoes_seen_from_whisper_base_are_taken_out() -> None:
    """What Whisper base wrote for 1 s notes with the prompt on (measured here)."""
    zh = initial_prompt("zh", ["XK-8800"])
    for echo in ("普通话的句子。", "以下是普通的句子。", "这边是普通话的句子。", "产品号：XK-8800。", " 产品型号２XK-8800。", "。。。。。。"):
        assert without_prompt_echo([echo], zh, ["XK-8800"]) == [], echo
    en = initial_prompt("en", ["XK-8800", "QT-7700"])
    for echo in ("Product names: XK-8800, QT-7700.", "XK-8800、QT-7700。"):
        assert without_prompt_echo([echo], en, ["XK-8800", "QT-7700"]) == [], echo
    for said in ("我的XK-8800不制冷了", "空调不制冷，声音像拖拉机", "好的。", "是", "对", "My XK-8800 is not cooling."):
        assert without_prompt_echo([said], zh, ["XK-8800"]) == [said]
    assert initial_prompt("zh", ["XK-8800"], duration_s=1.0) == "" and initial_prompt("zh", [], duration_s=5.0)


async def test_a_short_voice_note_through_wechat_is_not_answered_as_the_prompt(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    model_path: str, short_notes: dict[str, Path],
) -> None:
    from tests.conversation.conftest import Chat
    from tests.voice.test_voice_notes import send_voice
    from bot.app import build_app
    from bot.config import settings_from_mapping
    from tests.harness import Harness, gateway_config

    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    cfg["speech"] = {"enabled": True, "engine": "faster", "model_path": model_path, "vocabulary": ["XK-8800"], "language": "zh", "low_confidence": 0.0}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    h = Harness(client=client, fake=fake_wechat[0])
    chat = Chat(h, "oShort")
    await send_voice(h, "oShort", short_notes["ni3 hao3"].read_bytes())
    [reply] = await chat.replies(0, 1, timeout_s=60)
    doc = await h.runtime.store.messages.find_one({"sender": "oShort", "direction": "in"})
    assert doc is not None and _prompt_free(doc["transcript"]["text"]), doc["transcript"]
    assert _prompt_free(reply), reply
