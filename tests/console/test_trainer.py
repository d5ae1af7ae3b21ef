"""The trainer's pages without a browser: a kept question labelled by one trainer, approved
by a second, the trail showing both; junk forms, one's own approval and a missing CSRF
token refused with nothing changed; corrected voice transcripts reviewed. Real gateway,
real Redis and MongoDB-protocol server, the real sentence encoder."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from admin.roles import Role
from bot.voice import CorrectedTranscript
from channels.wechat.fake_api import FakeWeChatAPI
from knowledge.entry import entry_from_json
from knowledge.labels import APPROVED, PROPOSED
from knowledge.missed import MissedTurn
from knowledge.service import Knowledge
from tests.console.conftest import Browserless, ConsoleRig, make_rig, stored_inbound

ASKED = ("你们周末上班吗", "周末有人值班吗", "你们周末上班吗")


@pytest.fixture
async def rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> AsyncIterator[ConsoleRig]:
    r = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, knowledge={"enabled": True})
    yield r
    for http in r.sessions:
        await http.close()


def kb_of(rig: ConsoleRig) -> Knowledge:
    kb = rig.console.deps.knowledge
    assert kb is not None
    return kb


async def seed(rig: ConsoleRig) -> Knowledge:
    kb = kb_of(rig)
    await kb.store.save(entry_from_json({"title": "营业时间 / Opening hours", "questions": ["你们几点上班？", "When are you open?"],
                                         "answers": {"zh": "周一至周六 9:00-18:00。", "en": "Monday to Saturday, 9:00-18:00."}},
                                        entry_id="hours"), actor="test")
    for i, text in enumerate(ASKED):
        await kb.missed.add(MissedTurn(reason="out_of_scope", text=text, language="zh", conversation=f"wechat:demo:o{i}"))
    await kb.missed.add(MissedTurn(reason="handoff:asked for a person", text="转人工", language="zh", conversation="wechat:demo:o9"))
    return kb


async def page_text(person: Browserless, path: str) -> str:
    resp = await person.get(path)
    assert resp.status == 200, (path, resp.status)
    return html.unescape(await resp.text())


async def flash_after(person: Browserless, resp: Any) -> str:
    """The one-time message shown on the page a form post leads to."""
    assert resp.status == 303, await resp.text()
    for _ in range(3):
        resp = await person.get(resp.headers["Location"])
        if resp.status != 303:
            break
    assert resp.status == 200
    text = html.unescape(await resp.text())
    start = text.find('class="flash"')
    return text[start:text.find("</p>", start)] if start >= 0 else ""


async def test_a_label_needs_a_second_person_and_the_trail_shows_both(rig: ConsoleRig) -> None:
    kb = await seed(rig)
    tina = await rig.person("tina", Role.TRAINER)
    rex = await rig.person("rex", Role.TRAINER)
    home = await tina.get("/admin/")
    assert home.headers["Location"] == "/admin/trainer"
    missed = await page_text(tina, "/admin/trainer")
    assert "你们周末上班吗" in missed and "周末有人值班吗" in missed and "转人工" in missed
    # The two weekend sentences are one group, the hand-off another.
    assert missed.count('class="card trainer-group"') == 2

    form = {"kind": "entry", "entry": "hours", "texts": "你们周末上班吗\n周末有人值班吗"}
    flash = await flash_after(tina, await tina.post("/admin/trainer/labels", form))
    assert "等待他人审核" in flash
    [label] = await kb.labels.listing()
    assert label.status == PROPOSED and label.by == "tina"
    assert "你们周末上班吗" not in (await kb.store.get("hours")).questions  # nothing in effect yet
    assert "周末有人值班吗" not in await page_text(tina, "/admin/trainer")  # the group left the list

    own = await flash_after(tina, await tina.post(f"/admin/trainer/labels/{label.id}/approve"))
    assert "yours" in own
    assert (await kb.labels.get(label.id)).status == PROPOSED  # type: ignore[union-attr]

    await flash_after(rex, await rex.post(f"/admin/trainer/labels/{label.id}/approve"))
    assert (await kb.labels.get(label.id)).status == APPROVED  # type: ignore[union-attr]
    assert {"你们周末上班吗", "周末有人值班吗"} <= set((await kb.store.get("hours")).questions)

    trail = await page_text(tina, "/admin/trainer/labels")
    assert "tina" in trail and "rex" in trail
    assert "unlabelled → entry hours · proposed" in trail and "proposed → approved" in trail


@pytest.mark.parametrize("form, says", [
    ({"kind": "maybe", "texts": "你们周末上班吗"}, "kind"),
    ({"kind": "entry", "entry": "no-such-entry", "texts": "你们周末上班吗"}, "no-such-entry"),
    ({"kind": "intent", "intent": "Ask Hours", "texts": "你们周末上班吗"}, "intent"),
    ({"kind": "intent", "intent": "ask_hours", "entities": "just words", "texts": "你们周末上班吗"}, "entities"),
    ({"kind": "intent", "intent": "ask_hours", "entities": "day=周日", "texts": "你们周末上班吗"}, "entities.day"),
    ({"kind": "new_entry", "new_id": "hours", "title": "重复", "answer_zh": "x", "texts": "你们周末上班吗"}, "exists"),
    ({"kind": "ignore", "texts": ""}, "texts"),
])
async def test_junk_label_forms_are_refused_with_a_reason_and_change_nothing(rig: ConsoleRig, form: dict[str, str], says: str) -> None:
    kb = await seed(rig)
    tina = await rig.person("tina", Role.TRAINER)
    await tina.get("/admin/trainer")
    flash = await flash_after(tina, await tina.post("/admin/trainer/labels", form, headers={"Referer": rig.base + "/admin/trainer"}))
    assert says in flash, flash
    assert await kb.labels.listing() == []
    assert len(await kb.missed.recent(unlabelled=True)) == 4


async def test_a_post_without_the_csrf_token_is_refused(rig: ConsoleRig) -> None:
    kb = await seed(rig)
    tina = await rig.person("tina", Role.TRAINER)
    resp = await tina.post("/admin/trainer/labels", {"kind": "ignore", "texts": "转人工"}, csrf=False)
    assert resp.status == 403
    assert await kb.labels.listing() == []


async def test_agents_and_marketers_cannot_open_the_trainer_pages(rig: ConsoleRig) -> None:
    await seed(rig)
    for name, role in (("al", Role.AGENT), ("mo", Role.MARKETER)):
        person = await rig.person(name, role)
        assert (await person.get("/admin/trainer")).status == 403


async def test_corrected_transcripts_are_listed_and_reviewed(rig: ConsoleRig) -> None:
    kb = await seed(rig)
    await kb.transcripts.corrected(CorrectedTranscript(
        message="wechat:demo:m1", conversation="wechat:demo:o1", heard="我的xk八八零零不制冷", meant="我的XK-8800不制冷了",
        correction="wechat:demo:m2", language="zh", how="said_again",
    ))
    tina = await rig.person("tina", Role.TRAINER)
    page = await page_text(tina, "/admin/trainer/transcripts")
    assert "我的xk八八零零不制冷" in page and "我的XK-8800不制冷了" in page and "否认后重说" in page
    assert "/admin/messages/" not in page  # a trainer does not play customers' audio; agents do
    bad = await flash_after(tina, await tina.post("/admin/trainer/transcripts/wechat:demo:m1/review", {"verdict": "maybe"},
                                                  headers={"Referer": rig.base + "/admin/trainer/transcripts"}))
    assert "verdict" in bad
    await flash_after(tina, await tina.post("/admin/trainer/transcripts/wechat:demo:m1/review", {"verdict": "accepted"}))
    [kept] = await kb.transcripts.recent()
    assert kept.status == "accepted" and kept.reviewed_by == "tina"
    missing = await tina.post("/admin/trainer/transcripts/wechat:demo:nothing/review", {"verdict": "accepted"})
    assert missing.status in (303, 404)


async def test_an_agent_corrects_a_transcript_on_the_conversation_page(rig: ConsoleRig) -> None:
    kb = await seed(rig)
    resp = await rig.harness.say("oVoiceFix", "转人工")  # a conversation in the agents' queue
    assert resp.status == 200
    cid = "wechat:demo:oVoiceFix"
    await stored_inbound(rig, cid, "转人工")
    await rig.harness.runtime.store.messages.insert_one({
        "_id": "wechat:demo:voice-1", "direction": "in", "conversation": cid, "kind": "voice", "ts": 1.0, "sender": "oVoiceFix",
        "transcript": {"text": "我的xk八八零零不制冷", "language": "zh", "confidence": 0.41, "source": "whisper"},
    })
    al = await rig.person("al", Role.AGENT)
    page = await page_text(al, f"/admin/conversations/{cid}")
    assert 'action="/admin/messages/wechat%3Ademo%3Avoice-1/transcript"' in page or "/admin/messages/wechat:demo:voice-1/transcript" in page
    same = await flash_after(al, await al.post("/admin/messages/wechat:demo:voice-1/transcript", {"meant": "我的xk八八零零不制冷"},
                                               headers={"Referer": rig.base + f"/admin/conversations/{cid}"}))
    assert "different" in same
    assert await kb.transcripts.recent() == []
    done = await al.post("/admin/messages/wechat:demo:voice-1/transcript", {"meant": "我的XK-8800不制冷了"})
    assert "已记录更正" in await flash_after(al, done)
    [kept] = await kb.transcripts.recent()
    assert (kept.correction.heard, kept.correction.meant, kept.correction.how, kept.correction.correction) == (
        "我的xk八八零零不制冷", "我的XK-8800不制冷了", "agent", "agent:al")
    assert (await al.post("/admin/messages/nothing/transcript", {"meant": "x"})).status in (303, 404)
    tina = await rig.person("tina", Role.TRAINER)
    assert "客服更正" in await page_text(tina, "/admin/trainer/transcripts")
