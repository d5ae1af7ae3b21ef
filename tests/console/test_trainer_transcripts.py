"""The corrected-transcripts page's review without a browser: an agent's own correction
is not theirs to accept (the page says so, a forged post is refused, nothing changes),
another trainer accepts it, the trail shows both, and once exported the row says so."""

from __future__ import annotations

import re

import pytest

from admin.roles import Role
from bot.voice import CorrectedTranscript
from knowledge.transcripts import ACCEPTED, NEW
from tests.console.conftest import ConsoleRig
from tests.console.test_trainer import flash_after, kb_of, page_text, rig  # noqa: F401  (the gateway with knowledge on)

FIX = CorrectedTranscript(message="wechat:demo:v1", conversation="wechat:demo:o1", heard="我的xk八八零零不制冷", meant="我的XK-8800不制冷了",
                          correction="agent:ada", language="zh", how="agent")
REVIEW = "/admin/trainer/transcripts/wechat:demo:v1/review"


async def test_an_agents_correction_is_accepted_by_another_person_with_the_trail_shown(rig: ConsoleRig) -> None:  # noqa: F811
    kb = kb_of(rig)
    await kb.transcripts.corrected_by_agent(FIX)
    # An admin may both correct (as an agent) and review (as a trainer): not the same note.
    ada = await rig.person("ada", Role.ADMIN)
    page = await page_text(ada, "/admin/trainer/transcripts")
    assert "自己的更正需由他人审核" in page and f'action="{REVIEW}"' not in page.replace("%3A", ":")
    refused = await flash_after(ada, await ada.post(REVIEW, {"verdict": "accepted"}, headers={"Referer": rig.base + "/admin/trainer/transcripts"}))
    assert "yours" in refused
    [kept] = await kb.transcripts.recent()
    assert kept.status == NEW

    tina = await rig.person("tina", Role.TRAINER)
    assert "已记录" in await flash_after(tina, await tina.post(REVIEW, {"verdict": "accepted"}))
    again = await flash_after(tina, await tina.post(REVIEW, {"verdict": "accepted"}, headers={"Referer": rig.base + "/admin/trainer/transcripts"}))
    assert "already" in again
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", await page_text(tina, "/admin/trainer/transcripts")))
    assert "ada" in page and "更正: 我的xk八八零零不制冷 → 我的XK-8800不制冷了" in page
    assert "tina" in page and "采用: new → accepted" in page

    await kb.transcripts.mark_exported(["wechat:demo:v1"])
    [kept] = await kb.transcripts.recent()
    assert kept.status == ACCEPTED and kept.exported_at > 0
    assert "已导出到语音词表" in await page_text(tina, "/admin/trainer/transcripts")


@pytest.mark.parametrize("verdict", ["", "maybe"])
async def test_a_verdict_that_is_none_of_the_two_is_refused(rig: ConsoleRig, verdict: str) -> None:  # noqa: F811
    kb = kb_of(rig)
    await kb.transcripts.corrected_by_agent(FIX)
    tina = await rig.person("tina", Role.TRAINER)
    flash = await flash_after(tina, await tina.post(REVIEW, {"verdict": verdict}, headers={"Referer": rig.base + "/admin/trainer/transcripts"}))
    assert "verdict" in flash
    [kept] = await kb.transcripts.recent()
    assert kept.status == NEW and len(kept.trail) == 1
