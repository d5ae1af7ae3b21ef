"""A reverted intent label leaves the NLU training data it was exported into, on real
files: a copy of ``nlu_data/data``, the real ``kefu kb export-labels``, the real
MongoDB-protocol server. The sentence goes, the rest of the file (and what a reviewer
changed in it) stays, Rasa's schema still reads it, and exporting again adds nothing."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import AsyncMongoClient

from bot.cli import main as kefu
from knowledge.export import FILE_NAME, check, known_examples
from knowledge.exported import ExportedFile, take_out
from knowledge.label_trail import REVERTED as REVERTED_EVENT
from knowledge.label_trail import LabelTrail
from knowledge.labels import TrainerLabels
from knowledge.missed import MissedTurns
from knowledge.review import LabelReview
from knowledge.store import KnowledgeStore

ROOT = Path(__file__).resolve().parents[2]
DRIPPING = {"kind": "intent", "intent": "report_repair", "entities": {"device_model": "XK-8800"},
            "texts": ["我家XK-8800一直在滴水", "XK-8800 keeps dripping water"]}
STATUS = {"kind": "intent", "intent": "ask_repair_status", "texts": ["师傅到底哪天上门啊"]}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    copy = tmp_path / "nlu_data" / "data"
    shutil.copytree(ROOT / "nlu_data" / "data", copy)
    return copy


@pytest.fixture
async def review(mongo: AsyncMongoClient[Any], kb_store: KnowledgeStore, data: Path) -> LabelReview:
    db = mongo.get_default_database()
    parts = TrainerLabels(db), MissedTurns(db), LabelTrail(db)
    for part in parts:
        await part.ensure_indexes()
    return LabelReview(kb_store, *parts, ExportedFile(data / FILE_NAME))


async def _export(data: Path, tmp_path: Path, redis_url: str, mongo_url: str) -> str:
    config = tmp_path / "kefu.yml"
    await asyncio.to_thread(config.write_text, yaml.safe_dump({"redis_url": redis_url, "mongo_url": mongo_url}), encoding="utf-8")
    assert await asyncio.to_thread(kefu, ["--config", str(config), "kb", "export-labels", "--data", str(data)]) == 0
    return await _read(data)


async def _read(data: Path) -> str:
    return await asyncio.to_thread((data / FILE_NAME).read_text, encoding="utf-8")


async def _write(data: Path, text: str) -> None:
    await asyncio.to_thread((data / FILE_NAME).write_text, text, encoding="utf-8")


async def _known(data: Path) -> dict[str, str]:
    return await asyncio.to_thread(known_examples, data)


def _undated(text: str) -> list[str]:
    return [line for line in text.splitlines() if "written" not in line and "export-labels` on" not in line]


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    return [(b["intent"], b["examples"].splitlines()) for b in check(text)]


async def test_a_reverted_label_takes_its_sentences_out_of_the_exported_data(
    review: LabelReview, data: Path, tmp_path: Path, redis_url: str, mongo_url: str,
) -> None:
    dripping = (await review.label(DRIPPING, by="api", proposed=False)).label
    status = (await review.label(STATUS, by="api", proposed=False)).label
    text = await _export(data, tmp_path, redis_url, mongo_url)
    assert _blocks(text) == [("report_repair", ["- 我家[XK-8800](device_model)一直在滴水", "- [XK-8800](device_model) keeps dripping water"]),
                             ("ask_repair_status", ["- 师傅到底哪天上门啊"])]
    assert (await _known(data))["我家XK-8800一直在滴水"] == "report_repair"
    # The reviewer adds a sentence of their own to the other block before training.
    edited = text.replace("    - 师傅到底哪天上门啊\n", "    - 师傅到底哪天上门啊\n    - 师傅哪天来\n")
    await _write(data, edited)

    await review.revert(dripping.id, by="rita")

    after = await _read(data)
    assert _blocks(after) == [("ask_repair_status", ["- 师傅到底哪天上门啊", "- 师傅哪天来"])]
    assert f"trainer label {dripping.id}" not in after and f"trainer label {status.id}" in after
    known = await _known(data)  # what the next `kefu nlu train` reads
    assert "我家XK-8800一直在滴水" not in known and "XK-8800 keeps dripping water" not in known
    assert known["师傅哪天来"] == "ask_repair_status"
    trail = (await review.trail.of([dripping.id]))[dripping.id]
    assert trail[-1].action == REVERTED_EVENT and trail[-1].by == "rita" and "2 taken out of trainer_labels.yml" in trail[-1].after

    # Exporting again rewrites the file from the approved labels: the reverted one stays out.
    again = await _export(data, tmp_path, redis_url, mongo_url)
    assert _blocks(again) == [("ask_repair_status", ["- 师傅到底哪天上门啊"])]
    twice = await _export(data, tmp_path, redis_url, mongo_url)
    assert _undated(twice) == _undated(again)  # and twice is once (the header names the minute it was written)

    await review.revert(status.id, by="rita")
    empty = await _read(data)
    assert yaml.safe_load(empty)["nlu"] == [] and "师傅" not in empty


async def test_a_label_reverted_before_any_export_leaves_the_file_alone(review: LabelReview, data: Path) -> None:
    status = (await review.label(STATUS, by="api", proposed=False)).label
    hand_written = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 你好呀\n'
    await _write(data, hand_written)
    await review.revert(status.id, by="rita")
    assert await _read(data) == hand_written
    trail = (await review.trail.of([status.id]))[status.id]
    assert trail[-1].after == "reverted"


def test_only_the_named_block_goes_and_a_blank_line_or_comment_after_it_stays() -> None:
    text = ('version: "3.1"\nnlu:\n'
            "# source: trainer label aa11 by tina on 2026-12-07, from missed turns\n- intent: greet\n  examples: |\n    - 你好\n\n"
            "# a reviewer's note\n"
            "# source: trainer label bb22 by tina on 2026-12-07, from missed turns\n- intent: goodbye\n  examples: |\n    - 再见\n")
    out = take_out(text, "aa11")
    assert out.examples == ("你好",)
    assert out.text == ('version: "3.1"\nnlu:\n# a reviewer\'s note\n'
                        "# source: trainer label bb22 by tina on 2026-12-07, from missed turns\n- intent: goodbye\n  examples: |\n    - 再见\n")
    assert take_out(text, "aa1").text == text  # an id is matched whole
