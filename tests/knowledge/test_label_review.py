"""A label's second look, on the real MongoDB-protocol server and Redis: a proposed label
changes nothing until another person approves it, the trail keeps who did what, a revert
undoes the label's effect, and only approved labels are exported for training."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from knowledge.entry import entry_from_json
from knowledge.errors import InvalidEntry, ReviewRefused, UnknownEntry
from knowledge.evaluation import Labelled, load_set
from knowledge.export import render, render_set
from knowledge.label_trail import LabelTrail
from knowledge.labels import APPROVED, PROPOSED, REVERTED, TrainerLabels
from knowledge.missed import MissedTurn, MissedTurns
from knowledge.review import LabelReview
from knowledge.store import KnowledgeStore

ASKED = ["你们周末上班吗", "周末有人值班吗"]


@pytest.fixture
async def review(mongo: AsyncMongoClient[Any], kb_store: KnowledgeStore) -> LabelReview:
    db = mongo.get_default_database()
    parts = TrainerLabels(db), MissedTurns(db), LabelTrail(db)
    for part in parts:
        await part.ensure_indexes()
    await kb_store.save(entry_from_json({"title": "营业时间 / Opening hours", "questions": ["你们几点上班？", "When are you open?"],
                                         "answers": {"zh": "周一至周六 9:00-18:00。", "en": "Monday to Saturday, 9:00-18:00."}},
                                        entry_id="hours"), actor="test")
    for text in ASKED:
        await parts[1].add(MissedTurn(reason="out_of_scope", text=text, language="zh", conversation="wechat:demo:o1"))
    return LabelReview(kb_store, *parts)


async def test_a_proposed_label_takes_effect_only_when_a_second_person_approves_it(review: LabelReview) -> None:
    made = await review.label({"kind": "entry", "texts": ASKED, "entry": "hours"}, by="tina", proposed=True)
    assert made.label.status == PROPOSED and made.turns_marked == 2 and made.entry_saved is None
    assert not set(ASKED) & set((await review.store.get("hours")).questions)  # nothing changed yet
    assert await review.missed.recent(unlabelled=True) == []  # but the group left the list

    with pytest.raises(ReviewRefused, match="yours"):
        await review.approve(made.label.id, by="tina")
    approved = await review.approve(made.label.id, by="rex")
    assert approved.status == APPROVED and approved.reviewed_by == "rex"
    assert set(ASKED) <= set((await review.store.get("hours")).questions)
    with pytest.raises(ReviewRefused):
        await review.approve(made.label.id, by="sam")  # once is enough

    reverted = await review.revert(made.label.id, by="sam")
    assert reverted.status == REVERTED
    assert not set(ASKED) & set((await review.store.get("hours")).questions)
    assert sorted(t.text for t in await review.missed.recent(unlabelled=True)) == sorted(ASKED)

    trail = (await review.trail.of([made.label.id]))[made.label.id]
    assert [(e.by, e.action, e.before, e.after) for e in trail] == [
        ("tina", "labelled", "unlabelled", "entry hours · proposed"),
        ("rex", "approved", PROPOSED, APPROVED),
        ("sam", "reverted", APPROVED, REVERTED),
    ]
    assert trail[0].at <= trail[1].at <= trail[2].at


async def test_two_reviewers_at_once_one_approval_wins(review: LabelReview) -> None:
    made = await review.label({"kind": "no_answer", "texts": ASKED}, by="tina", proposed=True)
    results = await asyncio.gather(*(review.approve(made.label.id, by=who) for who in ("rex", "sam", "ann")), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, ReviewRefused) for r in results if isinstance(r, BaseException))
    events = (await review.trail.of([made.label.id]))[made.label.id]
    assert [e.action for e in events] == ["labelled", "approved"]


async def test_a_new_entry_label_creates_the_entry_on_approval_and_a_revert_deletes_it(review: LabelReview) -> None:
    body = {"kind": "entry", "texts": ["仓库在哪"], "entry": "warehouse",
            "new_entry": {"title": "仓库", "questions": ["仓库在哪"], "answers": {"zh": "在苏州。"}}}
    made = await review.label(body, by="tina", proposed=True)
    with pytest.raises(UnknownEntry):
        await review.store.get("warehouse")
    await review.approve(made.label.id, by="rex")
    assert (await review.store.get("warehouse")).answers["zh"].short == "在苏州。"
    await review.revert(made.label.id, by="rex")
    with pytest.raises(UnknownEntry):
        await review.store.get("warehouse")


async def test_a_revert_takes_back_only_what_the_approval_added(review: LabelReview) -> None:
    # One of the group's sentences was already a form of the entry before the label:
    # the revert must not take it off.
    made = await review.label({"kind": "entry", "texts": ["你们几点上班？", *ASKED], "entry": "hours"}, by="tina", proposed=True)
    approved = await review.approve(made.label.id, by="rex")
    assert approved.added == tuple(ASKED)
    await review.revert(made.label.id, by="rex")
    assert (await review.store.get("hours")).questions == ("你们几点上班？", "When are you open?")
    trail = (await review.trail.of([made.label.id]))[made.label.id]
    assert trail[-1].after == f"{REVERTED} · 1 form(s) the entry had before kept"


async def test_a_created_entry_someone_edited_since_is_kept_without_the_labels_forms(review: LabelReview) -> None:
    body = {"kind": "entry", "texts": ["仓库在哪"], "entry": "warehouse",
            "new_entry": {"title": "仓库", "questions": ["仓库在哪"], "answers": {"zh": "在苏州。"}}}
    made = await review.label(body, by="tina", proposed=True)
    await review.approve(made.label.id, by="rex")
    entry = await review.store.get("warehouse")
    # An editor adds a form by hand after the approval.
    await review.store.save(replace(entry, questions=(*entry.questions, "Where is your warehouse?")), actor="ann",
                            expected_version=entry.version)
    await review.revert(made.label.id, by="rex")
    kept = await review.store.get("warehouse")
    assert kept.questions == ("Where is your warehouse?",) and kept.answers["zh"].short == "在苏州。"
    trail = (await review.trail.of([made.label.id]))[made.label.id]
    assert "kept (edited since the approval)" in trail[-1].after


@pytest.mark.parametrize("body, field", [
    ({"kind": "entry", "texts": ASKED, "entry": "nowhere"}, "nowhere"),
    ({"kind": "entry", "texts": ASKED, "entry": "hours", "new_entry": {"title": "x", "questions": ["q"], "answers": {"zh": "a"}}}, "exists"),
    ({"kind": "entry", "texts": ASKED, "entry": "new-one", "new_entry": {"title": "x"}}, "."),
    ({"kind": "intent", "texts": ASKED, "intent": "ask hours"}, "intent"),
    ({"kind": "maybe", "texts": ASKED}, "kind"),
    ({"kind": "ignore", "texts": ["\ud800"]}, "texts"),
])
async def test_junk_labels_are_refused_and_change_nothing(review: LabelReview, body: dict[str, Any], field: str) -> None:
    with pytest.raises((InvalidEntry, UnknownEntry), match=field):
        await review.label(body, by="tina", proposed=True)
    assert await review.labels.listing() == []
    assert len(await review.missed.recent(unlabelled=True)) == 2
    assert (await review.store.get("hours")).version == 1


async def test_only_approved_labels_are_exported(review: LabelReview, tmp_path: Path) -> None:
    known = {"我的空调坏了": "report_repair"}
    waiting = await review.label({"kind": "intent", "intent": "report_repair", "texts": ["冰箱漏水了"]}, by="tina", proposed=True)
    approved = await review.label({"kind": "intent", "intent": "report_repair", "texts": ["洗衣机不转了"]}, by="tina", proposed=True)
    await review.approve(approved.label.id, by="rex")
    from_api = await review.label({"kind": "intent", "intent": "report_repair", "texts": ["电视没声音"]}, by="api", proposed=False)
    assert from_api.label.status == APPROVED
    exported = render(await review.labels.intents(), known, written_at=dt.datetime(2026, 12, 7))
    assert "洗衣机不转了" in exported.text and "电视没声音" in exported.text and "冰箱漏水了" not in exported.text
    assert set(exported.labels) == {approved.label.id, from_api.label.id} and waiting.label.id not in exported.labels

    answered = await review.label({"kind": "entry", "texts": ASKED, "entry": "hours"}, by="tina", proposed=True)
    await review.approve(answered.label.id, by="rex")
    nothing = await review.label({"kind": "no_answer", "texts": ["你们老板是谁"]}, by="tina", proposed=True)
    await review.approve(nothing.label.id, by="rex")
    await review.label({"kind": "no_answer", "texts": ["还没审核的问题"]}, by="tina", proposed=True)
    text, count = render_set(await review.labels.approved("entry", "no_answer"), written_at=dt.datetime(2026, 12, 7))
    await asyncio.to_thread((tmp_path / "asked.yml").write_text, text, encoding="utf-8")
    items = await asyncio.to_thread(load_set, tmp_path / "asked.yml")  # what `kefu kb test --set` reads
    assert count == 3 and items == [Labelled(ASKED[0], "hours"), Labelled(ASKED[1], "hours"), Labelled("你们老板是谁", None)]
