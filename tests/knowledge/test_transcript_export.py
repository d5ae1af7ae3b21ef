"""Corrected voice transcripts from review to the speech model's prompt, on the real
MongoDB-protocol server and real files: an agent's correction needs a second person, each
verdict is in the trail, and the accepted ones go out through the real ``kefu kb
export-labels`` as the speech vocabulary, which the speech settings read into Whisper's
decoding prompt. Exporting twice writes the same file."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import AsyncMongoClient

from bot.cli import main as kefu
from bot.voice import CorrectedTranscript
from knowledge.errors import ReviewRefused
from knowledge.transcripts import ACCEPTED, CORRECTED, NEW, REJECTED, CorrectedTranscripts
from knowledge.vocabulary import FILE_NAME, new_names
from speech.language import initial_prompt
from speech.settings import SpeechSettings

ROOT = Path(__file__).resolve().parents[2]


def said(key: str, heard: str, meant: str, *, agent: str = "") -> CorrectedTranscript:
    return CorrectedTranscript(
        message=f"wechat:demo:{key}", conversation=f"wechat:demo:o-{key}", heard=heard, meant=meant,
        correction=f"agent:{agent}" if agent else f"wechat:demo:{key}b", language="zh", how="agent" if agent else "said_again",
    )


@pytest.fixture
async def kept(mongo: AsyncMongoClient[Any]) -> CorrectedTranscripts:
    store = CorrectedTranscripts(mongo.get_default_database())
    await store.ensure_indexes()
    return store


async def test_an_agents_correction_is_reviewed_by_another_person_and_the_trail_keeps_each_step(kept: CorrectedTranscripts) -> None:
    await kept.corrected_by_agent(said("v1", "我的xk八八零零不制冷", "我的XK-8800不制冷了", agent="al"))
    with pytest.raises(ReviewRefused, match="yours"):
        await kept.review("wechat:demo:v1", ACCEPTED, by="al")
    [waiting] = await kept.recent()
    assert waiting.status == NEW and waiting.corrected_by == "al"

    accepted = await kept.review("wechat:demo:v1", ACCEPTED, by="tina")
    assert accepted is not None and accepted.status == ACCEPTED and accepted.reviewed_by == "tina"
    with pytest.raises(ReviewRefused, match="already"):
        await kept.review("wechat:demo:v1", ACCEPTED, by="rex")
    rejected = await kept.review("wechat:demo:v1", REJECTED, by="rex")  # a second look may overrule the first
    assert rejected is not None
    assert [(s.by, s.action, s.before, s.after) for s in rejected.trail] == [
        ("al", CORRECTED, "我的xk八八零零不制冷", "我的XK-8800不制冷了"), ("tina", ACCEPTED, NEW, ACCEPTED), ("rex", REJECTED, ACCEPTED, REJECTED)]

    # A customer's own correction: any trainer is the second person.
    await kept.corrected(said("c1", "HL一二零零不制热", "HL-1200不制热"))
    assert (await kept.review("wechat:demo:c1", ACCEPTED, by="al")) is not None


def test_the_names_a_correction_brought_in_are_the_product_names_the_transcript_lacked() -> None:
    assert new_names("我的xk八八零零不制冷", "我的XK-8800不制冷了") == ["XK-8800"]
    assert new_names("ZR 200 leaks again", "ZR-200 leaks again, the HL-1200B too") == ["ZR-200", "HL-1200B"]
    assert new_names("XK-8800坏了", "XK-8800坏了吗") == []  # heard right: nothing to teach
    assert new_names("一二三", "要修 3 台，在 2 楼") == []  # numbers alone are no names


async def test_accepted_corrections_go_out_as_the_speech_vocabulary_and_whisper_is_prompted_with_it(
    kept: CorrectedTranscripts, tmp_path: Path, redis_url: str, mongo_url: str,
) -> None:
    data = tmp_path / "nlu_data" / "data"
    await asyncio.to_thread(shutil.copytree, ROOT / "nlu_data" / "data", data)
    for c in (said("a1", "我的xk八八零零不制冷", "我的XK-8800不制冷了"), said("a2", "埃克斯K八八零零漏水", "XK-8800漏水"),
              said("a3", "zr二百不出水", "ZR-200不出水", agent="al"), said("n1", "bt三三零零", "BT-3300"),
              said("r1", "我要退货", "我要报修 XK-9900"), said("k1", "hl一二零零", "HL-1200")):
        await (kept.corrected_by_agent(c) if c.how == "agent" else kept.corrected(c))
    for key, verdict in (("a1", ACCEPTED), ("a2", ACCEPTED), ("a3", ACCEPTED), ("r1", REJECTED), ("k1", ACCEPTED)):
        await kept.review(f"wechat:demo:{key}", verdict, by="tina")
    config = tmp_path / "kefu.yml"
    # HL-1200 is configured already: the export leaves it out.
    await asyncio.to_thread(config.write_text, yaml.safe_dump(
        {"redis_url": redis_url, "mongo_url": mongo_url, "speech": {"vocabulary": ["HL-1200"]}}), encoding="utf-8")
    vocabulary = data.parent / FILE_NAME

    async def export() -> str:
        assert await asyncio.to_thread(kefu, ["--config", str(config), "kb", "export-labels", "--data", str(data)]) == 0
        return await asyncio.to_thread(vocabulary.read_text, encoding="utf-8")

    text = await export()
    print(text)
    names = [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]
    assert names == ["XK-8800", "ZR-200"]  # most corrected first; new (BT-3300) and rejected (XK-9900) ones stay out
    assert "XK-8800  # source: 2 accepted corrections, reviewed by tina" in text
    assert "wechat:" not in text  # no customer's message key in a file meant for review in git
    assert {k.correction.message for k in await kept.recent() if k.exported_at} == {"wechat:demo:a1", "wechat:demo:a2", "wechat:demo:a3"}
    assert await export() == text  # exporting twice adds nothing

    speech = await asyncio.to_thread(SpeechSettings.from_mapping, {"vocabulary": ["HL-1200"], "vocabulary_file": str(vocabulary)})
    assert speech.vocabulary == ("HL-1200", "XK-8800", "ZR-200")
    assert initial_prompt("zh", speech.vocabulary).endswith("产品型号：HL-1200、XK-8800、ZR-200。")
    not_yet = await asyncio.to_thread(SpeechSettings.from_mapping, {"vocabulary_file": str(tmp_path / "not-yet.txt")})
    assert not_yet.vocabulary == ()
