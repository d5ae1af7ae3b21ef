"""Repair diagnosis from past cases, as the engineer and the customer meet it.

Engineers close tickets with what they found (the ticket API); the next customer with
the same fault (WeChat webhook, real Rasa) gets a ticket and a to-do carrying the likely
cause and parts, and the stock check asks for those parts first. Where customers mostly
fixed the fault themselves, the bot offers the steps first and dispatches on "没用".
"""

from __future__ import annotations

from typing import Any

import pytest

from skills.repair_dispatch.tickets import Ticket
from skills.services import SkillServices
from tests.harness import Harness
from tests.skills.conftest import Fakes, SkillChat, auth, services
from tests.knowledge.test_conversation import _warm
from tests.skills.test_repair import _known_customer, _ticket


@pytest.fixture(autouse=True)
async def warm_rasa(rasa_url: str) -> None:
    """Rasa's first parse takes seconds (graph warm-up): not a customer's turn."""
    await _warm(rasa_url)

BREAKER = {"zh": "1. 看看配电箱里空调那一路的空气开关是不是跳了；2. 跳了就推回去，等三分钟再开机。",
           "en": "1. Check whether the air conditioner's breaker in the fuse box has tripped; 2. if so, switch it back on and wait three minutes."}


async def _closed_case(h: Harness, svc: SkillServices, n: int, *, model: str, fault: str, resolution: dict[str, Any]) -> None:
    """A past ticket of another customer, closed by its engineer through the API."""
    await _known_customer(h, f"oPast{n}")  # closing tells the customer
    ticket: Ticket = await svc.tickets.open(
        customer=f"wechat:demo:oPast{n}", conversation=f"wechat:demo:oPast{n}", source_message=f"past-{n}",
        fields={"device_model": model, "fault": fault, "address": "南京", "preferred_time": "明天"},
    )
    await svc.tickets.record(ticket["_id"], {"category": "cooling" if "制冷" in fault else "power"}, [])
    resp = await h.client.post(f"/api/repair/tickets/{ticket['number']}/status", headers=auth(),
                               json={"status": "done", "by": "E-02", "resolution": resolution})
    assert resp.status == 200, await resp.text()


async def test_the_likely_cause_and_parts_travel_with_the_ticket_and_stock_asks_for_them_first(gateway: Harness, fakes: Fakes) -> None:
    svc = services(gateway)
    for n, (cause, parts) in enumerate([("冷凝器堵塞", ["P-FAN-20"]), ("冷凝器堵塞", ["P-FAN-20"]), ("压缩机故障", ["P-CMP-88"])]):
        await _closed_case(gateway, svc, n, model="XK-8800", fault="不制冷", resolution={"cause": cause, "parts": parts})
    bad = await gateway.client.post("/api/repair/tickets/nope/status", headers=auth(), json={"status": "done"})
    assert bad.status == 404

    await _known_customer(gateway, "oCases")
    chat = SkillChat(gateway, "oCases")
    reply = chat.texts(await chat.say("我的XK-8800不制冷了", expect=2))
    assert "王强" in reply, reply  # dispatched at once: nobody fixed this fault themselves
    t = await _ticket(svc, "oCases")
    assert t["diagnosis"]["causes"][0] == {"cause": "冷凝器堵塞", "cases": 4}  # this model's cases count double
    assert t["diagnosis"]["parts"][:2] == ["P-FAN-20", "P-CMP-88"]
    assert fakes.erp.calls[-1]["parts"][:2] == ["P-FAN-20", "P-CMP-88"]
    assert [p["part_no"] for p in t["parts"]][:2] == ["P-FAN-20", "P-CMP-88"]
    assert "可能原因：冷凝器堵塞" in str(fakes.dingtalk.todos[-1]) and "P-FAN-20" in str(fakes.dingtalk.todos[-1])


async def test_a_self_check_is_offered_first_and_the_engineer_sent_when_it_does_not_help(gateway: Harness, fakes: Fakes) -> None:
    svc = services(gateway)
    tripped = {"cause": "空气开关跳闸", "self_fixed": True, "self_check": BREAKER}
    for n, resolution in enumerate([tripped, tripped, {"cause": "主板烧毁", "parts": ["P-PCB-99"]}]):
        await _closed_case(gateway, svc, 10 + n, model="XK-8800", fault="开不了机", resolution=resolution)
    assert await svc.db["repair_cases"].count_documents({"category": "power"}) == 3

    await _known_customer(gateway, "oSelf")
    chat = SkillChat(gateway, "oSelf")
    offered = chat.texts(await chat.say("我的XK-8800开不了机了"))
    assert "空气开关" in offered and "没用" in offered and "王强" not in offered, offered
    t = await _ticket(svc, "oSelf")
    assert t["status"] == "new" and t["self_check"]["cause"] == "空气开关跳闸" and not fakes.dingtalk.todos
    sent = await chat.say("没用", expect=2)
    dispatched = chat.texts(sent)
    assert "工程师" in dispatched and t["number"] in dispatched, dispatched
    t = await _ticket(svc, "oSelf")
    assert t["status"] == "assigned" and t["engineer"]["id"] in ("E-02", "E-04")
    assert fakes.erp.calls[-1]["parts"][0] == "P-PCB-99"
    print("transcript:\n 客户: 我的XK-8800开不了机了\n 机器人:", offered, "\n 客户: 没用\n 机器人:", dispatched)


async def test_a_self_check_that_helps_closes_the_ticket_as_a_case(gateway: Harness, fakes: Fakes) -> None:
    svc = services(gateway)
    tripped = {"cause": "空气开关跳闸", "self_fixed": True, "self_check": BREAKER}
    for n in range(3):
        await _closed_case(gateway, svc, 20 + n, model="XK-8800", fault="开不了机", resolution=tripped)
    await _known_customer(gateway, "oFixed")
    chat = SkillChat(gateway, "oFixed")
    assert "空气开关" in chat.texts(await chat.say("我的XK-8800开不了机了"))
    closed = chat.texts(await chat.say("好了，能用了", expect=2, timeout_s=3.0))  # one reply, not a second notice
    t = await _ticket(svc, "oFixed")
    assert "已关闭" in closed and "维修完成" not in closed and t["status"] == "done" and not fakes.dingtalk.todos
    case = await svc.db["repair_cases"].find_one({"_id": t["_id"]})
    assert case is not None and case["self_fixed"] and case["cause"] == "空气开关跳闸"
