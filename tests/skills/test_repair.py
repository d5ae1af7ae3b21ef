"""The repair loop end to end: WeChat text -> real Rasa -> form -> dispatch -> fakes -> reply."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from skills.services import SkillServices
from tests.harness import Harness
from tests.skills.conftest import Fakes, SkillChat, auth, bind_identity, services


async def _known_customer(h: Harness, sender: str, *, detail: str = "standard") -> str:
    """Demo customer C-1001 writing from ``sender``, reachable any time of day."""
    svc = services(h)
    await svc.db["crm_customers"].update_one({"_id": "C-1001"}, bind_identity(f"wechat:demo:{sender}"))
    engine = svc.notifier.engine
    assert engine is not None
    cid = f"wechat:demo:{sender}"
    await engine.prefs.create(
        cid,
        settings={"addresses": {"wechat": {"account": "demo", "openid": sender}}, "quiet_hours": None, "topics": {"repair": {"detail": detail}}},
    )
    return cid


async def _wait(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _ticket(svc: SkillServices, sender: str) -> dict[str, Any]:
    ticket = await svc.tickets.latest(f"wechat:demo:{sender}")
    assert ticket is not None
    return ticket


async def test_repair_loop_from_one_message(gateway: Harness, fakes: Fakes) -> None:
    await _known_customer(gateway, "oRepair")
    chat = SkillChat(gateway, "oRepair")
    sent = await chat.say("我的XK-8800不制冷了", expect=2)
    text = chat.texts(sent)
    # Device, address and time were known: no question, the engineer is on the job.
    assert "王强" in text and "制冷设备中级维修工" in text and "4.7" in text, text
    assert [s["msgtype"] for s in sent] == ["text", "image"]
    svc = services(gateway)
    t = await _ticket(svc, "oRepair")
    assert t["status"] == "assigned" and t["engineer"]["id"] == "E-02"
    assert [a["id"] for a in t["alternates"]] == ["E-01", "E-03"]  # NPS 88 (E-05) never qualifies
    assert t["warranty"]["covered"] and t["category"] == "cooling"
    assert t["incident"]["number"].startswith("INC") and t["todo_id"]
    assert fakes.servicenow.incidents[0]["correlation_id"] == t["_id"]
    assert fakes.dingtalk.todos[0]["executorIds"] == ["union-wangqiang"]
    assert {p["part_no"] for p in t["parts"]} >= {"P-CMP-88"} and fakes.erp.calls
    steps = [e["step"] for e in t["timeline"]]
    assert steps[:7] == ["opened", "lookup", "stock", "match", "incident", "todo", "status"] and "qr" in steps
    assert Path(t["qr_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The QR's link verifies the engineer; a forged one does not.
    url = await svc.repair.verify_url(t["_id"], "E-02")
    ok = await gateway.client.get("/verify/engineer?" + url.split("?", 1)[1])
    assert ok.status == 200 and (await ok.json())["engineer"]["cert_no"] == "RZ-32-0788"
    forged = await gateway.client.get("/verify/engineer", params={"e": "E-03", "t": t["_id"], "sig": "0" * 32})
    assert forged.status == 403

    # Status changes reach the customer through the notification engine.
    before = len(gateway.fake.sent_to("oRepair"))
    resp = await gateway.client.post(f"/api/repair/tickets/{t['number']}/status", json={"status": "on_the_way"}, headers=auth())
    assert resp.status == 200
    await _wait(lambda: _sent_more(gateway, "oRepair", before))
    assert "工程师已出发" in gateway.fake.sent_to("oRepair")[-1]["text"]["content"]
    status = chat.texts(await chat.say("我的维修单到哪一步了"))
    assert t["number"] in status and "工程师在路上" in status
    t2 = await _ticket(svc, "oRepair")
    assert [e["step"] for e in t2["timeline"]][-2:] == ["status", "notified"]


async def _sent_more(h: Harness, sender: str, before: int) -> bool:
    return len(h.fake.sent_to(sender)) > before


async def test_brief_detail_keeps_it_short(gateway: Harness) -> None:
    await _known_customer(gateway, "oBrief", detail="brief")
    chat = SkillChat(gateway, "oBrief")
    text = chat.texts(await chat.say("我的XK-8800不制冷了", expect=2))
    assert "王强" in text and "资质" not in text


async def test_erp_and_servicenow_down_degrade_honestly_then_recover(gateway: Harness, fakes: Fakes) -> None:
    await _known_customer(gateway, "oDown")
    fakes.erp.down = True
    fakes.servicenow.down = True
    chat = SkillChat(gateway, "oDown")
    text = chat.texts(await chat.say("我的XK-8800不制冷了", expect=2))
    assert "库存系统暂时无法查询" in text and "服务工单系统暂时不可用" in text and "客服同事" in text
    svc = services(gateway)
    t = await _ticket(svc, "oDown")
    assert t["dispatch"]["state"] == "retrying" and t["dispatch"]["pending"] == ["stock", "incident"]
    assert t["status"] == "assigned"  # the engineer has the to-do; only the back office lags
    flagged = await (await gateway.client.get("/api/repair/tickets", params={"attention": "1"}, headers=auth())).json()
    assert [x["number"] for x in flagged["tickets"]] == [t["number"]]
    assert (await gateway.client.get("/api/repair/tickets")).status == 401
    fakes.erp.down = False
    fakes.servicenow.down = False

    async def recovered() -> bool:
        return (await _ticket(svc, "oDown"))["dispatch"]["state"] == "done"

    await _wait(recovered)
    t = await _ticket(svc, "oDown")
    assert t["attention"] is None and t["incident"]["number"] and len(fakes.servicenow.incidents) == 1
    assert "recovered" in [e["step"] for e in t["timeline"]]


async def test_todo_failure_keeps_status_new_until_retry_assigns(gateway: Harness, fakes: Fakes) -> None:
    await _known_customer(gateway, "oTodo")
    await asyncio.sleep(0)
    fakes.dingtalk.fail_next(3, status=503)
    chat = SkillChat(gateway, "oTodo")
    text = chat.texts(await chat.say("我的XK-8800不制冷了", expect=2))
    assert "派单系统暂时联系不上" in text
    svc = services(gateway)
    assert (await _ticket(svc, "oTodo"))["status"] == "new"
    before = len(gateway.fake.sent_to("oTodo"))

    async def assigned() -> bool:
        return (await _ticket(svc, "oTodo"))["status"] == "assigned"

    await _wait(assigned)
    await _wait(lambda: _sent_more(gateway, "oTodo", before))
    assert "已派单" in gateway.fake.sent_to("oTodo")[-1]["text"]["content"]
