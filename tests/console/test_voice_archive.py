"""Voice notes kept at receipt: an agent plays one after the platform has let it go.

Through the real signed and encrypted WeChat webhook, with the fake WeChat media API on
loopback; Whisper is off here (the archive does not depend on it), the browser test plays
a transcribed note the same way.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from bot.errors import ConfigError
from bot.voice_archive import DAY_S, VoiceArchive, VoiceArchiveSettings
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import voice_xml
from tests.console.conftest import ConsoleRig, make_rig, stored
from tests.harness import next_msg_id

MEDIA_GET = "/cgi-bin/media/get"


def tone_amr(tmp_path: Path, seconds: float = 2.0) -> bytes:
    """A real AMR-NB file (PyAV's encoder), as WeChat hands voice notes over."""
    from tests.speech.conftest import encode

    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    out = tmp_path / "tone.amr"
    encode(pcm, 8000, out, "amr", "libopencore_amrnb", 12200)
    return out.read_bytes()


async def send_voice(rig: ConsoleRig, sender: str, audio: bytes) -> dict[str, Any]:
    media_id = rig.harness.fake.add_media(audio)
    assert (await rig.harness.post_xml(voice_xml(sender, media_id, next_msg_id()))).status == 200
    return await stored(rig, {"sender": sender, "kind": "voice", "media.media_id": media_id})


async def kept(archive: VoiceArchive, key: str) -> bytes:
    for _ in range(250):
        found = await archive.get(key)
        if found is not None:
            return found.audio
        await asyncio.sleep(0.02)
    raise AssertionError("the voice note was never kept")


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body)) as w:
        return w.getnframes() / w.getframerate()


async def test_a_voice_note_plays_after_the_platform_forgot_it(rig: ConsoleRig, tmp_path: Path) -> None:
    alice = await rig.person("alice")
    audio = tone_amr(tmp_path)
    doc = await send_voice(rig, "oKept", audio)
    archive = rig.console.deps.voice_archive
    assert archive is not None
    assert await kept(archive, doc["_id"]) == audio  # the platform's bytes, as they came

    fake = rig.harness.fake
    fake.media.clear()  # three days later: WeChat's temporary media is gone
    asked = fake.calls[MEDIA_GET]
    resp = await alice.get(f"/admin/messages/{doc['_id']}/media")
    assert resp.status == 200 and resp.content_type == "audio/wav"
    assert 1.9 < wav_seconds(await resp.read()) < 2.2
    assert fake.calls[MEDIA_GET] == asked  # played from the store, the platform not asked


async def test_without_the_archive_a_forgotten_note_is_a_clear_404(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    rig = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, voice_notes={"keep_days": 0})
    try:
        alice = await rig.person("alice")
        doc = await send_voice(rig, "oGone", tone_amr(tmp_path))
        await asyncio.sleep(0.3)
        assert await rig.console.deps.db["voice_notes"].count_documents({}) == 0  # keeping is off
        rig.harness.fake.media.clear()
        caplog.clear()
        resp = await alice.get(f"/admin/messages/{doc['_id']}/media")
        assert resp.status == 404 and "平台已不再保存此文件" in await resp.text()
        assert all(r.exc_info is None for r in caplog.records)
    finally:
        for http in rig.sessions:
            await http.close()


async def test_a_note_the_platform_will_not_hand_over_costs_no_turn(rig: ConsoleRig, caplog: pytest.LogCaptureFixture) -> None:
    rig.harness.fake.fail_next(3, path=MEDIA_GET, errcode=40007)
    caplog.clear()
    doc = await send_voice(rig, "oRefused", b"#!AMR\n" + b"\x00" * 32)
    sent = await rig.harness.fake.wait_sent(1)  # the turn still ends in an answer
    assert sent[-1]["touser"] == "oRefused"
    lines = [r for r in caplog.records if "not kept" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None and "oRefused" not in lines[0].getMessage()
    assert await rig.console.deps.db["voice_notes"].count_documents({}) == 0


async def test_size_bound_and_retention(mongo: Any) -> None:
    archive = VoiceArchive(mongo.get_default_database(), VoiceArchiveSettings(keep_days=30, max_bytes=1000))
    await archive.ensure_indexes()
    now = time.time()
    assert await archive.keep("in:old", b"a" * 10, "amr", customer="wechat:demo:o1", at=now - 31 * DAY_S)
    assert await archive.keep("in:new", b"b" * 10, "amr", customer="wechat:demo:o1", at=now - 29 * DAY_S)
    assert not await archive.keep("in:big", b"c" * 1001, "amr", customer="wechat:demo:o1")
    assert await archive.keep("in:new", b"x" * 10, "amr", customer="wechat:demo:o1")  # handled again: the first copy stays
    assert await archive.purge(now=now) == 1
    assert await archive.get("in:old") is None and await archive.get("in:big") is None
    found = await archive.get("in:new")
    assert found is not None and found.audio == b"b" * 10 and found.format == "amr"
    assert [j.name for j in archive.jobs()] == ["voice-notes-purge"]
    assert VoiceArchive(mongo.get_default_database(), VoiceArchiveSettings(keep_days=0)).jobs() == []


@pytest.mark.parametrize(
    "section", [{"keep_days": -1}, {"max_bytes": 0}, {"max_bytes": 20 * 1024 * 1024}, {"keep": 3}, {"keep_days": "soon"}]
)
def test_bad_settings_are_refused(section: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="voice_notes"):
        VoiceArchiveSettings.from_section(section)
