"""What a trainer does on the pages, in a real browser (Debian's chromium, Playwright):
the open pages follow new missed turns and another trainer's approval without a reload;
corrected transcripts are accepted (an agent's own correction is left to someone else);
the held-out gate's figures are read and the new model switched in with one click, or
not offered when a figure dropped. Screenshots: docs/console/trainer_model.png (the
comparison before the switch), docs/console/trainer_transcripts.png."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from admin.roles import Role
from bot.voice import CorrectedTranscript
from knowledge.missed import MissedTurn
from knowledge.transcripts import ACCEPTED
from tests.console.conftest import PASSWORD, ConsoleRig
from tests.console.test_browser import browser, shot, sign_in  # noqa: F401  (the browser fixture)
from tests.console.test_trainer import kb_of, rig, seed  # noqa: F401  (the gateway with knowledge on)
from tests.console.test_trainer_model import ModelRig, model_rig  # noqa: F401  (with NLU and two fake Rasa servers)

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


async def test_open_trainer_pages_follow_new_questions_and_another_trainers_approval(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    kb = await seed(rig)
    await rig.console.users.create("tina", Role.TRAINER, PASSWORD)
    proposed = await kb.review.label({"kind": "entry", "texts": ["你们周末上班吗", "周末有人值班吗"], "entry": "hours"}, by="tina", proposed=True)

    tina = await sign_in(browser, rig, "tina", lands="**/admin/trainer")
    news = tina.locator("#trainer-news")
    assert await news.is_hidden()
    await kb.missed.add(MissedTurn(reason="fallback", text="发票怎么开", language="zh", conversation="wechat:demo:o8"))
    await news.wait_for(state="visible", timeout=10_000)
    assert "现在共 2 条未标注" in await news.inner_text()  # the hand-off and the new one

    await tina.goto(rig.base + "/admin/trainer/labels")
    row = tina.locator(f'#label-list tr[data-label="{proposed.label.id}"]')
    assert await row.get_attribute("data-status") == "proposed" and await row.locator(".own").count() == 1
    await asyncio.sleep(0.5)  # the page's stream is open
    await kb.review.approve(proposed.label.id, by="rex")  # rex, on another web process
    # The row changes in place (the page's CSP allows no evaluated script, so wait on the selector).
    await tina.locator(f'#label-list tr[data-label="{proposed.label.id}"][data-status="approved"]').wait_for(timeout=10_000)
    assert (await row.locator("td.status").inner_text()).strip() == "已批准"
    assert await row.locator(".own").count() == 0
    trail = [line.strip() for line in (await row.locator("ol.trail").inner_text()).splitlines() if line.strip()]
    assert len(trail) == 2 and "rex" in trail[1] and "proposed → approved" in trail[1]


async def test_a_trainer_accepts_a_corrected_transcript_but_not_their_own(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    kb = kb_of(rig)
    await rig.console.users.create("ada", Role.ADMIN, PASSWORD)
    await kb.transcripts.corrected(CorrectedTranscript(
        message="wechat:demo:m1", conversation="wechat:demo:o1", heard="我的xk八八零零不制冷", meant="我的XK-8800不制冷了",
        correction="wechat:demo:m2", language="zh", how="said_again"))
    await kb.transcripts.corrected_by_agent(CorrectedTranscript(
        message="wechat:demo:v9", conversation="wechat:demo:o9", heard="zr二百不出水", meant="ZR-200不出水",
        correction="agent:ada", language="zh", how="agent"))
    ada = await sign_in(browser, rig, "ada", lands="**/admin/inbox")
    await ada.goto(rig.base + "/admin/trainer/transcripts")
    own = ada.locator('#transcript-list tr[data-message="wechat:demo:v9"]')
    assert "自己的更正需由他人审核" in await own.inner_text() and await own.get_by_role("button").count() == 0
    customer = ada.locator('#transcript-list tr[data-message="wechat:demo:m1"]')
    await customer.get_by_role("button", name="采用", exact=True).click()
    await ada.wait_for_url("**/admin/trainer/transcripts")
    assert "已记录" in await ada.locator(".flash").inner_text()
    customer = ada.locator('#transcript-list tr[data-message="wechat:demo:m1"]')
    assert await customer.get_attribute("data-status") == ACCEPTED
    assert "ada" in await customer.locator("ol.trail").inner_text()
    await shot(ada, "trainer_transcripts")


async def test_a_trainer_reads_the_gate_and_switches_the_model_in(browser: Any, model_rig: ModelRig) -> None:  # noqa: F811
    m = model_rig
    await m.rig.console.users.create("tina", Role.TRAINER, PASSWORD)
    await asyncio.to_thread(m.record, "worse")
    tina = await sign_in(browser, m.rig, "tina", lands="**/admin/trainer")
    await tina.goto(m.rig.base + "/admin/trainer/model")
    assert await tina.locator("#gate-verdict").get_attribute("data-passed") == "no"
    assert await tina.locator('#gate-figures tr.drop[data-metric="intent macro F1"]').count() == 1
    assert await tina.get_by_role("button", name="确认切换到新模型").count() == 0
    assert "intent macro F1 dropped" in await tina.locator("#gate-blocked").inner_text()

    await asyncio.to_thread(m.record, "after")  # the trainer fixed the examples; the gate ran again
    await tina.reload()
    assert await tina.locator("#gate-verdict").get_attribute("data-passed") == "yes"
    row = tina.locator('#gate-figures tr[data-metric="intent report_repair F1"]')
    assert [c.strip() for c in await row.locator("td").all_inner_texts()][1:] == ["0.9000", "0.9750", "+0.0750"]
    await shot(tina, "trainer_model")
    await tina.get_by_role("button", name="确认切换到新模型").click()
    await tina.wait_for_url("**/admin/trainer/model")
    assert "新模型已加载" in await tina.locator(".flash").inner_text()
    assert "tina" in await tina.locator("#gate-switched").inner_text()
    assert [s.loads for s in m.servers] == [[str(m.model)], [str(m.model)]]
