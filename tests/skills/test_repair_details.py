"""Repair details through the signed WeChat webhook and real Rasa: the customer's chosen
time is booked, a repeated report shows the open ticket, spoken model numbers find the
device, and a number that is no model is not taken for one."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from skills.repair_dispatch.models import model_in, resolve_model, spoken_digits
from skills.repair_dispatch.visit_time import parse_visit_time
from tests.harness import Harness
from tests.skills.conftest import Fakes, SkillChat, bind_identity, services

ANSWERS = {  # what the customer says when the form asks (keyed by the question's words)
    "Which device": "QT-7700",
    "What is wrong": "it is leaking water",
    "Where should": "12 Lake Street, Hangzhou",
    "When would you like": "as soon as possible",
    "哪台设备": "XK-8800",
    "什么时间上门": "尽快",
}


async def _bind(h: Harness, customer: str, sender: str) -> None:
    await services(h).db["crm_customers"].update_one({"_id": customer}, bind_identity(f"wechat:demo:{sender}"))


async def _converse(chat: SkillChat, text: str, *, answers: dict[str, str], limit: int = 5) -> str:
    """Say ``text``, answer the form's questions from ``answers``; the final reply's text."""
    reply = chat.texts(await chat.say(text, expect=1))
    for _ in range(limit):
        question = next((q for q in answers if q in reply), None)
        if question is None:
            return reply
        reply = chat.texts(await chat.say(answers[question], expect=1))
    return reply


async def _tickets(h: Harness, sender: str) -> list[dict[str, Any]]:
    return [t async for t in services(h).db["tickets"].find({"customer": f"wechat:demo:{sender}"})]


async def test_the_chosen_time_is_booked_and_said(gateway: Harness) -> None:
    svc = services(gateway)
    # Without a contract SLA the bot asks when the engineer should come.
    await svc.db["contracts"].update_one({"_id": "K-2025-001"}, {"$unset": {"sla_hours": ""}})
    tomorrow = (dt.datetime.now(ZoneInfo("Asia/Shanghai")) + dt.timedelta(days=1)).strftime("%m-%d")
    engineers = []
    for sender in ("oSlot1", "oSlot2"):
        await _bind(gateway, "C-1001", sender)
        chat = SkillChat(gateway, sender)
        asked = chat.texts(await chat.say("我的XK-8800不制冷了"))
        assert "什么时间上门" in asked, asked
        booked = chat.texts(await chat.say("明天上午", expect=2))
        assert f"预约 {tomorrow} 上午（09:00-12:00）" in booked, booked
        assert "分钟" not in booked.split("\n")[1]  # not "arriving in 60 minutes"
        [ticket] = await _tickets(gateway, sender)
        assert ticket["visit"]["slot"].endswith(":morning") and ticket["eta"].startswith(tomorrow)
        engineers.append(ticket["engineer"]["id"])
    # The second booking of the same morning goes to the engineer not yet booked then.
    assert engineers[0] != engineers[1]


async def test_a_repeated_report_shows_the_open_ticket_and_adds_to_it(gateway: Harness, fakes: Fakes) -> None:
    await _bind(gateway, "C-1001", "oAgain")
    chat = SkillChat(gateway, "oAgain")
    await chat.say("我的XK-8800不制冷了", expect=2)
    [first] = await _tickets(gateway, "oAgain")
    again = chat.texts(await chat.say("XK-8800还是不制冷，温度一直降不下来"))
    assert first["number"] in again and "无需重复报修" in again, again
    [ticket] = await _tickets(gateway, "oAgain")
    notes = [e for e in ticket["timeline"] if e["step"] == "note"]
    assert [n["detail"]["text"] for n in notes] == ["XK-8800还是不制冷，温度一直降不下来"]
    assert len(fakes.servicenow.incidents) == 1 and len(fakes.dingtalk.todos) == 1


@pytest.mark.parametrize("said", ["the washing machine model QT 7,700 is leaking water", "the washing machine QT seven seven hundred is leaking water, please send someone"])
async def test_spoken_model_numbers_find_the_device(gateway: Harness, said: str) -> None:
    # C-1002 has two devices (XK-9900 and QT-7700): the model decides which.
    await _bind(gateway, "C-1002", "oSpoken")
    chat = SkillChat(gateway, "oSpoken")
    await _converse(chat, said, answers={k: v for k, v in ANSWERS.items() if k != "Which device"})
    [ticket] = await _tickets(gateway, "oSpoken")
    assert ticket["device_model"] == "QT-7700" and ticket["device"]["serial"] == "SN-QT7700-0003"


def test_model_numbers_as_whisper_writes_them() -> None:
    known = ["QT-7700", "XK-8800", "XK-9900"]
    assert spoken_digits("eight thousand eight hundred") == "8800" and spoken_digits("seven seven zero zero") == "7700"
    for said, model in (
        ("QT 7,700", "QT-7700"), ("QT seven seven hundred", "QT-7700"), ("qt seventy-seven hundred", "QT-7700"),
        ("XK 8800", "XK-8800"), ("xk8800坏了", "XK-8800"), ("我的快递10天了还没到", ""), ("XK 1234", ""),
    ):
        assert resolve_model(None, said, known) == model, said
    assert resolve_model("10", "我的快递10天了还没到", known) == ""
    assert model_in("XK-8800 mirror") == "XK-8800" and model_in("qt7700") == "QT7700" and model_in("10") == ""


def test_visit_times() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    monday_9am = dt.datetime(2026, 12, 7, 9, 0, tzinfo=zone).timestamp()
    cases = {
        "明天上午": ("2026-12-08", "morning", 9), "后天下午3点": ("2026-12-09", "15:00", 15),
        "tomorrow afternoon": ("2026-12-08", "afternoon", 13), "周五下午": ("2026-12-11", "afternoon", 13),
        "next monday morning": ("2026-12-14", "morning", 9),
    }
    for said, (day, part, hour) in cases.items():
        window = parse_visit_time(said, now=monday_9am, timezone="Asia/Shanghai")
        assert window is not None and (window.day, window.part) == (day, part), said
        assert dt.datetime.fromtimestamp(window.start, zone).hour == hour
    for said in ("尽快", "as soon as possible", "尽快（合同约定 4 小时内响应）"):
        assert parse_visit_time(said, now=monday_9am, timezone="Asia/Shanghai") is None
