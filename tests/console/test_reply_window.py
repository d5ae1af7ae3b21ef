"""The page warns before a reply the platform would refuse, and nothing is sent."""

from __future__ import annotations

import asyncio
import time

from channels.wechat.simulator import text_xml
from tests.console.conftest import ConsoleRig, stored_inbound
from tests.console.test_inbox import CID, ask_for_a_person
from tests.harness import next_msg_id


async def test_wechat_48_hour_window(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "reply-form" in page and "可回复至" in page
    # The customer's last message, as WeChat stamps it, 49 hours ago.
    old = int(time.time()) - 49 * 3600
    await rig.harness.post_xml(text_xml("oInbox", "很久以前的消息", next_msg_id(), create_time=old))
    await stored_inbound(rig, CID, "很久以前的消息")
    await rig.harness.runtime.store.messages.delete_many({"conversation": CID, "direction": "in", "text": {"$ne": "很久以前的消息"}})
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "reply-form" not in page and "超过 48 小时" in page
    sends = len(rig.harness.fake.sent_to("oInbox"))
    resp = await alice.post(f"/admin/conversations/{CID}/reply", {"text": "还在吗"})
    assert resp.status == 303
    await asyncio.sleep(0.4)
    assert len(rig.harness.fake.sent_to("oInbox")) == sends
    assert "超过 48 小时" in await (await alice.get(f"/admin/conversations/{CID}")).text()  # told why
