"""Complaints made in chat, through the signed WeChat webhook and real Rasa: a late
delivery gets the review remedy (SLA match, breach stated, coupon, carrier board, a
person offered); a product complaint opens a case and queues it for a person."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.harness import Harness
from tests.skills.conftest import Fakes, SkillChat, bind_identity, services

DAY = 86_400.0


async def _as_demo_customer(h: Harness, sender: str) -> None:
    await services(h).db["crm_customers"].update_one({"_id": "C-1001"}, bind_identity(f"wechat:demo:{sender}"))


async def test_late_delivery_in_chat_gets_the_review_remedy_once(gateway: Harness, fakes: Fakes) -> None:
    await _as_demo_customer(gateway, "oLate")
    chat = SkillChat(gateway, "oLate")
    reply = chat.texts(await chat.say("我的快递10天了还没到，订单号DD2024031500123"))
    # The demo order: SF promises 2 days, shipped 6 days ago, not delivered: 4 days late.
    assert "DD2024031500123" in reply and "SF" in reply and "晚了 4 天" in reply, reply
    [coupon] = fakes.coupons.issued.values()
    assert coupon["code"] in reply and coupon["amount"] == 40
    assert "人工" in reply  # a person is offered
    board = await services(gateway).db["carrier_stats"].find_one({"_id": "SF"})
    assert board is not None and board["logistics_reviews"] == 1 and board["breaches"] == 1 and board["delay_days"] == 4
    again = chat.texts(await chat.say("订单DD2024031500123的快递到底什么时候到"))
    assert coupon["code"] in again and len(fakes.coupons.issued) == 1
    board = await services(gateway).db["carrier_stats"].find_one({"_id": "SF"})
    assert board is not None and board["logistics_reviews"] == 1


async def test_logistics_complaint_without_an_order_asks_for_it(gateway: Harness, fakes: Fakes) -> None:
    await _as_demo_customer(gateway, "oNoOrder")
    chat = SkillChat(gateway, "oNoOrder")
    asked = chat.texts(await chat.say("my package still hasn't arrived"))
    assert "order number" in asked, asked
    unknown = chat.texts(await chat.say("DD2099010100001"))
    assert "can't find" in unknown and "DD2099010100001" in unknown
    remedied = chat.texts(await chat.say("DD2024031500123"))
    assert "4 day(s) late" in remedied and fakes.coupons.issued


async def test_an_order_within_its_promise_gets_its_due_date(gateway: Harness, fakes: Fakes) -> None:
    await _as_demo_customer(gateway, "oEarly")
    now = time.time()
    await services(gateway).db["orders"].insert_one(
        {"_id": "DD2026120600001", "carrier": "SF", "region": "CN", "shipped_at": now - 0.5 * DAY, "delivered_at": None, "customer": "C-1001"}
    )
    chat = SkillChat(gateway, "oEarly")
    reply = chat.texts(await chat.say("订单DD2026120600001的快递怎么还没到"))
    due = datetime.fromtimestamp(now + 1.5 * DAY, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    assert "还在承诺时间内" in reply and "2 天" in reply, reply
    assert due[5:] in reply and not fakes.coupons.issued


async def test_someone_elses_order_is_not_found(gateway: Harness, fakes: Fakes) -> None:
    chat = SkillChat(gateway, "oStranger")  # not bound to C-1001, who owns the order
    reply = chat.texts(await chat.say("我的快递一直没到，订单号DD2024031500123"))
    assert "没有找到" in reply and "SF" not in reply and not fakes.coupons.issued


async def test_product_complaint_opens_a_case_and_queues_it_for_a_person(gateway: Harness) -> None:
    await _as_demo_customer(gateway, "oAngry")
    chat = SkillChat(gateway, "oAngry")
    reply = chat.texts(await chat.say("用几天就坏了，质量太差"))
    svc = services(gateway)
    [case] = [c async for c in svc.db["complaint_cases"].find({"customer": "wechat:demo:oAngry"})]
    assert case["_id"] in reply and case["product"] == "XK-8800" and case["problem"] == "用几天就坏了，质量太差"
    waiting = await gateway.runtime.handoff.waiting()
    assert [w["reason"] for w in waiting if w["conversation"] == "wechat:demo:oAngry"] == [f"product complaint, case {case['_id']}"]
