"""An unknown customer asking about a renewal, through the signed WeChat webhook and real
Rasa: asked for a contract or phone number first, handed to a person with it, told once
how long the wait is, and still answered where the bot can help meanwhile."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.harness import Harness
from tests.skills.conftest import SkillChat


async def test_unknown_customer_gives_a_reference_then_waits_with_answers(
    gateway: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = SkillChat(gateway, "oNewToUs")
    asked = chat.texts(await chat.say("我的合同快到期了，想续约"))
    assert "合同编号" in asked and "手机号" in asked, asked
    assert await gateway.runtime.handoff.waiting() == []  # not handed over blind

    unknown = chat.texts(await chat.say("合同号HT20990101"))
    assert "没有找到" in unknown, unknown
    found = chat.texts(await chat.say("合同号是K-2025-001"))
    assert "核实您的身份" in found, found
    [waiting] = await gateway.runtime.handoff.waiting()
    assert waiting["conversation"] == "wechat:demo:oNewToUs" and "contract K-2025-001" in waiting["reason"]
    # The contract number the customer typed is in the reason, which logs keep at DEBUG only.
    queued = [r for r in caplog.records if "queued for a human" in r.getMessage()]
    assert queued and all(r.levelno == logging.DEBUG for r in queued if "K-2025-001" in r.getMessage()), queued
    assert not [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG and "K-2025-001" in r.getMessage()]

    # Waiting: what the bot may answer is answered, the rest told once.
    settings = chat.texts(await chat.say("我现在的通知设置是什么"))
    assert "您现在的通知设置" in settings, settings
    notice = chat.texts(await chat.say("续约价格大概多少钱"))
    assert "前面还有 0 位" in notice and "分钟" in notice, notice
    before = len(gateway.fake.sent_to("oNewToUs"))
    await chat.say("续约价格大概多少钱？？", expect=0)
    await asyncio.sleep(1.5)
    assert len(gateway.fake.sent_to("oNewToUs")) == before  # told once; kept for the agent
    state = await gateway.runtime.states.get("wechat:demo:oNewToUs")
    assert state is not None and state.owner == "queue"  # still the agent's to take
