"""Corrected voice transcripts on the real MongoDB-protocol server: written in batches, a
poison item fails alone, a turn handled twice keeps one record, a trainer's verdict."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from bot.voice import CorrectedTranscript
from knowledge.errors import InvalidEntry
from knowledge.transcripts import ACCEPTED, NEW, CorrectedTranscripts


def correction(i: int, meant: str = "") -> CorrectedTranscript:
    return CorrectedTranscript(
        message=f"wechat:demo:{i}", conversation=f"wechat:demo:o{i}", heard="我的xk八八零零不制冷",
        meant=meant or f"我的XK-8800不制冷了 {i}", correction=f"wechat:demo:{i}b", language="zh", how="said_again",
    )


@pytest.fixture
async def kept(mongo: AsyncMongoClient[Any]) -> CorrectedTranscripts:
    store = CorrectedTranscripts(mongo.get_default_database())
    await store.ensure_indexes()
    return store


async def test_many_corrections_share_commands_and_a_poison_one_fails_alone(kept: CorrectedTranscripts) -> None:
    items = [correction(i) for i in range(40)] + [correction(99, meant="坏的\ud800文字")]
    results = await asyncio.gather(*(kept.corrected(c) for c in items), return_exceptions=True)
    failed = [c.message for c, r in zip(items, results) if isinstance(r, BaseException)]
    assert failed == ["wechat:demo:99"]
    # One command for the batch, then the batch again piece by piece to isolate the poison one.
    print(f"41 corrections, {kept.writes.commands} bulk writes")
    assert kept.writes.commands <= 1 + len(items)
    stored = await kept.recent(limit=100)
    assert len(stored) == 40 and all(k.status == NEW for k in stored)

    before = kept.writes.commands
    await asyncio.gather(*(kept.corrected(c) for c in items[:20]))
    assert kept.writes.commands - before == 1  # 20 writes from 20 turns at once: one command


async def test_a_turn_handled_again_keeps_one_record_and_a_verdict_is_recorded(kept: CorrectedTranscripts) -> None:
    await kept.corrected(correction(1))
    await kept.corrected(correction(1, meant="第二次处理时的文字"))
    [only] = await kept.recent()
    assert only.correction.meant == "我的XK-8800不制冷了 1"
    reviewed = await kept.review("wechat:demo:1", ACCEPTED, by="tina")
    assert reviewed is not None and reviewed.status == ACCEPTED and reviewed.reviewed_by == "tina"
    assert await kept.recent(status=NEW) == []
    assert await kept.review("wechat:demo:nothing", ACCEPTED, by="tina") is None
    with pytest.raises(InvalidEntry):
        await kept.review("wechat:demo:1", "maybe", by="tina")
