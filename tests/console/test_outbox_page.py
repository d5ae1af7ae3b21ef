"""Dead letters in the console: listed with their reason, retried or discarded once."""

from __future__ import annotations

import asyncio

from tests.console.conftest import ConsoleRig
from tests.console.test_inbox import CID, ask_for_a_person


async def dead_reply(rig: ConsoleRig, text: str) -> str:
    rig.harness.fake.fail_next(1, errcode=40003)  # invalid openid: permanent, no retry
    await rig.harness.runtime.handoff.agent_reply(CID, "alice", text)
    for _ in range(200):
        rows = await rig.harness.runtime.store.dead_letters_recent()
        if rows:
            return str(rows[0]["_id"])
        await asyncio.sleep(0.02)
    raise AssertionError("no dead letter")


async def test_retry_and_discard(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    await rig.harness.fake.wait_sent(2)
    record = await dead_reply(rig, "请稍等，我查一下")
    page = await (await alice.get("/admin/outbox")).text()
    assert "40003" in page and CID in page
    assert (await alice.post(f"/admin/outbox/{record}/retry")).status == 303
    sent = await rig.harness.fake.wait_sent(3)
    assert sent[-1]["text"]["content"] == "请稍等，我查一下"
    assert (await alice.post(f"/admin/outbox/{record}/retry", headers={"Referer": rig.base + "/admin/outbox"})).status == 303
    await asyncio.sleep(0.3)
    assert len(rig.harness.fake.sent_to("oInbox")) == 3  # the second retry found nothing to send
    assert "该记录已被处理" in await (await alice.get("/admin/outbox")).text()

    record = await dead_reply(rig, "这条不用再发了")
    assert (await alice.post(f"/admin/outbox/{record}/discard")).status == 303
    assert await rig.harness.runtime.store.dead_letters_recent() == []
    actions = [e.action for e in await rig.console.audit.recent()]
    assert actions[:2] == ["outbox.discard", "outbox.retry"]
