"""The skills' actions shown among a conversation's messages: a repair ticket with its
timeline, a renewal quote, a delivery remedy, a complaint case.

The conversation comes through the real webhook; the actions are taken through the
skills' own services (as the skills do in chat, without Rasa here) on the demo data.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from bot.customer_card import CardSubject
from skills.conversation_actions import skill_actions
from skills.demo import DEMO_IDENTITY, load_demo
from skills.services import SkillServices
from tests.console.conftest import ConsoleRig, stored_inbound

CID = DEMO_IDENTITY  # a one-to-one WeChat chat: the conversation is the customer's identity
SENDER = DEMO_IDENTITY.rsplit(":", 1)[1]


@dataclass(frozen=True)
class Taken:
    ticket: str
    contract: str
    order: str
    case: str


async def take_actions(rig: ConsoleRig) -> Taken:
    """A customer asks for a person; the skills open a ticket (then assign it), quote a
    renewal, remedy a late delivery and open a complaint case in that conversation."""
    services = rig.console.deps.skills
    assert isinstance(services, SkillServices)
    await load_demo(services.db)
    assert (await rig.harness.say(SENDER, "转人工")).status == 200
    await stored_inbound(rig, CID, "转人工")
    ticket = await services.tickets.open(
        customer=DEMO_IDENTITY, conversation=CID, source_message="in:actions:1",
        fields={"device_model": "XK-8800", "fault": "压缩机不启动", "address": "中山路88号"},
    )
    await services.tickets.change_status(ticket["_id"], "assigned", at=time.time() + 1, by="dispatch")
    _crm, contracts = await services.renewals.contracts_of(DEMO_IDENTITY)
    await services.renewals.open_opportunity(contracts[0], via="wechat", conversation=CID)
    remedy = await services.reviews.remedy_chat(
        text="顺丰 DD2024031500123 还没到", order_id="DD2024031500123", identity=DEMO_IDENTITY, conversation=CID, language="zh"
    )
    assert remedy.status == "remedied"
    case = await services.cases.open(conversation=CID, customer=DEMO_IDENTITY, product="XK-8800<b>", problem="噪音很大", intent="complain_product")
    return Taken(ticket["number"], str(contracts[0]["_id"]), "DD2024031500123", case)


def order_of(page: str, needles: list[str]) -> list[int]:
    return [page.index(n) for n in needles]


async def test_the_page_shows_each_action_where_it_happened(rig: ConsoleRig) -> None:
    taken = await take_actions(rig)
    alice = await rig.person("alice")
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    kinds = re.findall(r'data-action="([a-z]+)"', page)
    assert kinds == ["ticket", "renewal", "remedy", "case"]  # in the order they were taken
    asked = page.index("转人工</p>")
    assert all(at > asked for at in order_of(page, ['data-action="ticket"', 'data-action="case"']))
    ticket = page[page.index('data-action="ticket"'):page.index('data-action="renewal"')]
    assert taken.ticket in ticket and "维修工单" in ticket and "XK-8800" in ticket
    assert "处理记录（2 步）" in ticket and "已创建" in ticket and "状态变更" in ticket and "已派单" in ticket
    renewal = page[page.index('data-action="renewal"'):page.index('data-action="remedy"')]
    assert taken.contract in renewal and "续约报价" in renewal and "CNY 1" in renewal and "周杰" in renewal
    remedy = page[page.index('data-action="remedy"'):page.index('data-action="case"')]
    assert taken.order in remedy and "SF" in remedy and "延误天数</span> 4" in remedy and "CNY 40" in remedy
    assert taken.case in page and "XK-8800&lt;b&gt;" in page and "XK-8800<b>" not in page  # escaped
    # What the customer wrote stays in the messages; the actions carry facts only.
    assert "压缩机不启动" not in page and "中山路88号" not in page and "噪音很大" not in page


async def test_english_words_and_other_conversations_stay_apart(rig: ConsoleRig) -> None:
    await take_actions(rig)
    bob = await rig.person("bob")
    assert (await bob.post("/admin/account/preferences", {"language": "en", "time_zone": "Asia/Shanghai"})).status == 303
    page = await (await bob.get(f"/admin/conversations/{CID}")).text()
    for words in ("Repair ticket", "Renewal quote", "Delivery remedy", "Complaint case", "Timeline (2 steps)", "days late"):
        assert words in page, words
    assert (await rig.harness.say("oSomeoneElse", "转人工")).status == 200
    await stored_inbound(rig, "wechat:demo:oSomeoneElse", "转人工")
    other = await (await bob.get("/admin/conversations/wechat:demo:oSomeoneElse")).text()
    assert "data-action=" not in other


async def test_a_step_the_console_has_no_word_for_shows_its_code(rig: ConsoleRig) -> None:
    taken = await take_actions(rig)
    services: Any = rig.console.deps.skills
    ticket = await services.tickets.find(taken.ticket)
    await services.tickets.record(ticket["_id"], {}, [{"at": time.time() + 5, "step": "drone_sent", "by": "bot", "ok": False, "detail": {"error": "no drone"}}])
    actions = await skill_actions(services)(CardSubject(DEMO_IDENTITY, "wechat", "demo", SENDER, CID))
    steps = actions[0].steps
    assert [s.step for s in steps] == ["opened", "status", "drone_sent"] and steps[-1].ok is False
    alice = await rig.person("alice")
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert 'class="failed"' in page and "drone_sent ✗" in page and "no drone" in page
