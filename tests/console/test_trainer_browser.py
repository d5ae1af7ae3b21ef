"""The trainer's loop in a real browser (Debian's chromium, Playwright): a trainer signs
in, labels a kept question with an existing knowledge entry; a second trainer approves
it; the review trail shows both, and the entry now has the question. Screenshots:
docs/console/trainer_missed.png (the kept questions), docs/console/trainer.png (the trail)."""

from __future__ import annotations

from typing import Any

import pytest

from admin.roles import Role
from knowledge.labels import APPROVED
from tests.console.conftest import PASSWORD, ConsoleRig
from tests.console.test_browser import browser, shot, sign_in  # noqa: F401  (the browser fixture)
from tests.console.test_trainer import rig, seed  # noqa: F401  (the gateway with knowledge on)

pytestmark = pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O


async def test_a_trainer_labels_a_kept_question_and_a_second_one_approves_it(browser: Any, rig: ConsoleRig) -> None:  # noqa: F811
    kb = await seed(rig)
    await rig.console.users.create("tina", Role.TRAINER, PASSWORD)
    await rig.console.users.create("rex", Role.TRAINER, PASSWORD)

    tina = await sign_in(browser, rig, "tina", lands="**/admin/trainer")
    await shot(tina, "trainer_missed")
    group = tina.locator("section.trainer-group", has_text="周末有人值班吗")
    await group.locator('input[name="kind"][value="entry"]').check()
    await group.locator('input[name="entry"]').fill("hours")
    await group.get_by_role("button", name="提交标注（待他人审核）").click()
    await tina.wait_for_url("**/admin/trainer")
    assert "已提交标注" in await tina.locator(".flash").inner_text()
    assert await tina.locator("section.trainer-group", has_text="周末有人值班吗").count() == 0

    rex = await sign_in(browser, rig, "rex", lands="**/admin/trainer")
    await rex.goto(rig.base + "/admin/trainer/labels")
    row = rex.locator("#label-list tr[data-status=proposed]", has_text="周末有人值班吗")
    await row.get_by_role("button", name="批准").click()
    await rex.wait_for_url("**/admin/trainer/labels")
    assert "已批准" in await rex.locator(".flash").inner_text()

    await tina.goto(rig.base + "/admin/trainer/labels")
    row = tina.locator("#label-list tr[data-status=approved]", has_text="周末有人值班吗")
    trail = [line.strip() for line in (await row.locator("ol.trail").inner_text()).splitlines() if line.strip()]
    assert len(trail) == 2
    assert "tina" in trail[0] and "unlabelled → entry hours · proposed" in trail[0]
    assert "rex" in trail[1] and "proposed → approved" in trail[1]
    await shot(tina, "trainer")

    [label] = await kb.labels.listing()
    assert label.status == APPROVED and label.by == "tina" and label.reviewed_by == "rex"
    assert {"你们周末上班吗", "周末有人值班吗"} <= set((await kb.store.get("hours")).questions)
