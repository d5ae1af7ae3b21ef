"""What an open repair form takes, and what it leaves to others, through the signed
WeChat webhook and real Rasa (the rough edges of the first demo conversation):

- a visit time is no address: kept as the time, and the address asked again;
- a question while the address is asked is answered from the knowledge base, and the
  form waits (with one reminder) for the address; a "thanks" gets no reminder;
- a confident logistics complaint goes to the complaint skill, its order number too;
- a question NLU is unsure of is looked up before a repair form opens;
- "tomorrow morning" after a dispatch is about the visit, not a greeting;
- "我的快递10天了还没到" is a parcel, not device model 10.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from knowledge.service import KNOWLEDGE, load_demo
from tests.harness import Harness
from tests.skills.conftest import SkillChat, bind_identity, services

ADDRESS_PROMPT = "请提供需要上门维修的地址"
ADDRESS = "南京市鼓楼区中山路88号"
WARRANTY = "整机保修三年"


@pytest.fixture
async def customer(gateway: Harness) -> Harness:
    """Demo customer C-1001 without an address on file, so the repair form asks for it."""
    await services(gateway).db["crm_customers"].update_one({"_id": "C-1001"}, {"$unset": {"address": ""}})
    await load_demo(gateway.client.app[KNOWLEDGE].store)
    return gateway


async def _chat(h: Harness, sender: str) -> SkillChat:
    await services(h).db["crm_customers"].update_one({"_id": "C-1001"}, bind_identity(f"wechat:demo:{sender}"))
    return SkillChat(h, sender)


async def _tickets(h: Harness, sender: str) -> list[dict[str, Any]]:
    return [t async for t in services(h).db["tickets"].find({"customer": f"wechat:demo:{sender}"})]


async def _form(h: Harness, sender: str) -> Any:
    state = await h.runtime.states.get(f"wechat:demo:{sender}")
    return state.form if state is not None else None


def _tomorrow() -> str:
    return (dt.datetime.now(ZoneInfo("Asia/Shanghai")) + dt.timedelta(days=1)).strftime("%m-%d")


async def test_a_visit_time_is_no_address_it_is_kept_as_the_time(customer: Harness) -> None:
    await services(customer).db["contracts"].update_one({"_id": "K-2025-001"}, {"$unset": {"sla_hours": ""}})
    chat = await _chat(customer, "oTimeNotAddress")
    assert ADDRESS_PROMPT in chat.texts(await chat.say("我的XK-8800不制冷了"))
    again = chat.texts(await chat.say("明天上午"))
    assert "上门时间记为“明天上午”" in again and ADDRESS_PROMPT in again, again
    assert await _tickets(customer, "oTimeNotAddress") == []
    booked = chat.texts(await chat.say(ADDRESS, expect=2))
    assert f"预约 {_tomorrow()} 上午（09:00-12:00）" in booked, booked
    [ticket] = await _tickets(customer, "oTimeNotAddress")
    assert ticket["address"] == ADDRESS and ticket["preferred_time"] == "明天上午"


async def test_thanks_during_the_form_is_answered_without_a_reminder(customer: Harness) -> None:
    chat = await _chat(customer, "oThanksMidForm")
    assert ADDRESS_PROMPT in chat.texts(await chat.say("我的XK-8800不制冷了"))
    thanked = await chat.say("谢谢", expect=2, timeout_s=3)  # a second message would be the reminder
    assert len(thanked) == 1 and "还差一步" not in chat.texts(thanked), thanked
    dispatched = chat.texts(await chat.say(ADDRESS, expect=2))
    assert "已为您登记报修" in dispatched, dispatched


async def test_a_question_during_the_form_is_answered_and_the_form_waits(customer: Harness) -> None:
    chat = await _chat(customer, "oAskMidForm")
    assert ADDRESS_PROMPT in chat.texts(await chat.say("我的XK-8800不制冷了"))
    answered = await chat.say("XK-8800保修几年？", expect=2)
    answer, reminder = chat.texts(answered[:1]), chat.texts(answered[1:])
    assert WARRANTY in answer and ADDRESS_PROMPT not in answer, answered
    assert "还差一步" in reminder and ADDRESS_PROMPT in reminder, reminder
    assert await _tickets(customer, "oAskMidForm") == []
    dispatched = chat.texts(await chat.say(ADDRESS, expect=2))
    assert "已为您登记报修" in dispatched, dispatched
    [ticket] = await _tickets(customer, "oAskMidForm")
    assert ticket["address"] == ADDRESS and ticket["device_model"] == "XK-8800"


async def test_a_confident_complaint_during_the_form_goes_to_the_complaint_skill(customer: Harness) -> None:
    chat = await _chat(customer, "oParcelMidForm")
    assert ADDRESS_PROMPT in chat.texts(await chat.say("我的XK-8800不制冷了"))
    asked = chat.texts(await chat.say("我的快递三天了还没到，太慢了"))
    assert "订单号" in asked and "地址" not in asked, asked  # one question at a time: no reminder yet
    remedied = await chat.say("DD2024031500123", expect=2)
    assert "晚了 4 天" in chat.texts(remedied[:1]), remedied
    assert ADDRESS_PROMPT in chat.texts(remedied[1:]), remedied  # now the form's question, once
    assert await _tickets(customer, "oParcelMidForm") == []
    form = await _form(customer, "oParcelMidForm")
    assert form is not None and form.slots["device_model"] == "XK-8800" and "address" not in form.slots
    chat.texts(await chat.say(ADDRESS, expect=2))
    [ticket] = await _tickets(customer, "oParcelMidForm")
    assert ticket["address"] == ADDRESS


async def test_an_unsure_question_is_looked_up_before_a_repair_form_opens(customer: Harness) -> None:
    parsed = await customer.runtime.nlu.parse("XK-8800保修几年？") if customer.runtime.nlu else None
    chat = await _chat(customer, "oWarranty")
    reply = chat.texts(await chat.say("XK-8800保修几年？"))
    assert WARRANTY in reply and "设备" not in reply and ADDRESS_PROMPT not in reply, (parsed, reply)
    assert await _form(customer, "oWarranty") is None and await _tickets(customer, "oWarranty") == []


async def test_a_time_after_a_dispatch_asks_to_move_the_visit(gateway: Harness) -> None:
    chat = await _chat(gateway, "oMoveVisit")
    await chat.say("我的XK-8800不制冷了", expect=2)  # the contract's SLA: dispatched at once
    [ticket] = await _tickets(gateway, "oMoveVisit")
    moved = chat.texts(await chat.say("tomorrow morning"))
    tomorrow = (dt.datetime.now(ZoneInfo("Asia/Shanghai")) + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert ticket["number"] in moved and f"moved to {tomorrow} morning" in moved, moved
    assert "Hello" not in moved and "How can I help" not in moved
    [ticket] = await _tickets(gateway, "oMoveVisit")
    assert ticket["reschedule"]["slot"] == f"{tomorrow}:morning" and ticket["attention"]["reason"] == "reschedule"
    assert [e["step"] for e in ticket["timeline"]][-1] == "reschedule_requested"
    # Without a ticket the time is not a greeting either: the customer is asked what it is for.
    stranger = SkillChat(gateway, "oTimeAlone")
    alone = stranger.texts(await stranger.say("tomorrow morning"))
    assert "What would you like to book?" in alone, alone


async def test_days_in_a_parcel_complaint_are_no_device_model(gateway: Harness) -> None:
    chat = await _chat(gateway, "oTenDays")
    reply = chat.texts(await chat.say("我的快递10天了还没到"))
    assert "订单号" in reply and "设备" not in reply and "工单" not in reply, reply
    assert await _form(gateway, "oTenDays") is None and await _tickets(gateway, "oTenDays") == []
    state = await gateway.runtime.states.get("wechat:demo:oTenDays")
    assert state is not None and state.last_intent == "complain_logistics" and state.awaiting == "complain_logistics"
