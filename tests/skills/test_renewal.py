"""Renewals: the rule language, the scan on a controllable clock (exactly once), the rules
API and the chat skill on real Rasa."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from preferences.clock import ManualClock
from preferences.model import Importance, Notification, Topic
from skills.renewal.rules import RuleError, evaluate, matching_actions, validate_rule
from tests.harness import Harness
from tests.skills.conftest import SkillChat, auth, services

DAY = 86_400.0
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)

BIG_DEAL = {
    "name": "big deal: tell the CTO",
    "when": {"all": [{"field": "amount", "op": ">", "value": 1_000_000}]},
    "then": [{"action": "notify_contact", "role": "CTO", "channel": "email"}],
}
SMALL_NEW = {
    "name": "small and new: legal first",
    "when": {"all": [{"field": "customer.registered_capital", "op": "<", "value": 5_000_000}, {"field": "past_contracts", "op": "<", "value": 3}]},
    "then": [{"action": "legal_review"}],
}


def test_conditions_evaluate_without_code() -> None:
    facts = {"amount": 2_000_000, "customer": {"registered_capital": 1_000_000, "tags": ["vip"]}, "past_contracts": 1}
    assert evaluate(BIG_DEAL["when"], facts)
    assert evaluate(SMALL_NEW["when"], facts)
    assert evaluate({"any": [{"field": "amount", "op": "<", "value": 1}, {"field": "customer.tags", "op": "contains", "value": "vip"}]}, facts)
    assert not evaluate({"field": "missing.path", "op": ">", "value": 1}, facts)  # missing: false, not an error
    assert not evaluate({"field": "customer", "op": ">", "value": 1}, facts)  # mistyped: false
    assert evaluate({"not": {"field": "missing", "op": "exists", "value": True}}, facts)
    assert [a["rule"] for a in matching_actions([validate_rule(BIG_DEAL), {**validate_rule(SMALL_NEW), "enabled": False}], facts)] == [BIG_DEAL["name"]]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({**BIG_DEAL, "when": {"field": "amount", "op": "__import__", "value": 1}}, "when.op"),
        ({**BIG_DEAL, "when": {"all": []}}, "when.all"),
        ({**BIG_DEAL, "then": [{"action": "exec"}]}, "then[0].action"),
        ({**BIG_DEAL, "then": [{"action": "notify_contact"}]}, "then[0]"),
        ({**BIG_DEAL, "when": {"field": "amount", "op": "in", "value": 3}}, "when.value"),
        ({**BIG_DEAL, "name": ""}, "name"),
    ],
)
def test_bad_rules_are_refused_with_the_place(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as err:
        validate_rule(rule)
    assert err.value.field == field


async def _contract(h: Harness, cid: str, customer: str, days: float, amount: float, now: float, **kw: Any) -> None:
    await services(h).db["contracts"].insert_one(
        {"_id": cid, "customer": customer, "product": "XK maintenance", "kind": "maintenance", "start": now - 300 * DAY,
         "end": now + days * DAY, "amount": amount, "currency": "CNY", "sales_owner": {"name": "Lin Na", "union_id": "union-linna"}, **kw}
    )


async def test_scan_sends_each_offset_once_and_rules_act(plain_gateway: Harness) -> None:
    h = plain_gateway
    svc = services(h)
    clock = ManualClock(START)
    svc.renewals.clock = clock
    db = svc.db
    await db["contracts"].delete_many({})  # only this test's contracts
    now = clock.now()
    await _contract(h, "K-60", "C-1001", 59.5, 180_000, now, past_contracts=1)
    await _contract(h, "K-30", "C-1002", 29.5, 1_250_000, now, past_contracts=5)
    await _contract(h, "K-20", "C-1002", 20, 90_000, now, past_contracts=5)
    await _contract(h, "K-7", "C-1002", 6.5, 90_000, now, past_contracts=5)
    await _contract(h, "K-100", "C-1002", 100, 90_000, now, past_contracts=5)
    for rid, rule in (("big", BIG_DEAL), ("small", SMALL_NEW)):
        resp = await h.client.put(f"/api/renewal/rules/{rid}", json=rule, headers=auth())
        assert resp.status == 200, await resp.text()
    # C-1002 reads its reminders in the weekly digest.
    engine = svc.notifier.engine
    assert engine is not None
    wechat_1002 = "wechat:demo:oDemoEnglish"
    await engine.prefs.create(wechat_1002, settings={"addresses": {"wechat": {"account": "demo", "openid": "oDemoEnglish"}}, "language": "en", "topics": {"renewal": {"frequency": "weekly"}}})

    report = await svc.renewals.scan()
    assert (report.scanned, report.sent, report.failed) == (4, 4, 0)
    recs = {r["_id"]: r async for r in db["renewal_reminders"].find({})}
    assert set(recs) == {"K-60:60", "K-30:30", "K-20:30", "K-7:7"}  # the tightest offset only; K-100 not yet
    assert {recs[k]["decision"] for k in ("K-30:30", "K-20:30", "K-7:7")} == {"digest"}
    assert recs["K-30:30"]["actions"][0]["action"] == "notify_contact" and recs["K-30:30"]["actions"][0]["to"] == "cto@lakefoods.example.cn"
    assert await db["notifications"].count_documents({"customer": "contact:cto@lakefoods.example.cn"}) == 1
    assert (await db["contracts"].find_one({"_id": "K-60"}) or {})["legal_review"]["required"] is True

    again = await svc.renewals.scan()
    assert again.sent == 0
    # A crash after the records but before the contracts were marked: still nothing twice.
    await db["contracts"].update_many({}, {"$unset": {"reminded": ""}})
    crashed = await svc.renewals.scan()
    assert (crashed.sent, crashed.skipped) == (0, 4)
    sent_before = await db["notifications"].count_documents({"topic": "renewal"})

    clock.advance(30 * DAY)  # K-60 is now 29.5 days out, K-100 70; the others ended
    later = await svc.renewals.scan()
    recs = {r["_id"] async for r in db["renewal_reminders"].find({})}
    assert "K-60:30" in recs and "K-100:60" not in recs and later.sent == 1
    clock.advance(10 * DAY)
    assert (await svc.renewals.scan()).sent == 1 and await db["renewal_reminders"].count_documents({"_id": "K-100:60"}) == 1
    assert await db["notifications"].count_documents({"topic": "renewal"}) > sent_before


async def test_unfinished_reminders_are_finished_by_the_next_scan(plain_gateway: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = plain_gateway
    svc = services(h)
    clock = ManualClock(START)
    svc.renewals.clock = clock
    db = svc.db
    await db["contracts"].delete_many({})
    now = clock.now()
    for cid, customer in (("K-a", "C-1002"), ("K-b", "C-1001"), ("K-c", "C-1001")):
        await _contract(h, cid, customer, 29.5, 1_250_000, now, past_contracts=1)
    await svc.renewals.put_rule("big", BIG_DEAL)
    await svc.renewals.put_rule("small", SMALL_NEW)
    notify = svc.notifier.notify
    notify_many = svc.notifier.notify_many
    failing = {"renewal:K-b:30"}

    async def flaky(notifications: list[Notification]) -> list[Any]:
        # The engine fails for one item of the batch (once: it is back for the next scan).
        down = {n.key for n in notifications if n.key in failing}
        failing.difference_update(down)
        passed = iter(await notify_many([n for n in notifications if n.key not in down]))
        return [RuntimeError("engine down") if n.key in down else next(passed) for n in notifications]

    monkeypatch.setattr(svc.notifier, "notify_many", flaky)

    async def renewal_notifications(contract: str) -> int:
        return await db["notifications"].count_documents({"topic": "renewal", "data.contract_id": contract})

    # One reminder of the batch fails: the others are recorded, it stays pending.
    report = await svc.renewals.scan()
    assert (report.sent, report.failed) == (2, 1)
    recs = {r["_id"]: r async for r in db["renewal_reminders"].find({})}
    assert {k: r["status"] for k, r in recs.items()} == {"K-a:30": "sent", "K-b:30": "pending", "K-c:30": "sent"}
    assert [a["action"] for a in recs["K-c:30"]["actions"]] == ["notify_contact", "legal_review"]
    flagged = {c["_id"] async for c in db["contracts"].find({"legal_review.required": True})}
    assert flagged == {"K-c"}  # stored with the batch's marks; K-b's actions never ran

    # A worker died after claiming K-d, with its notification already out.
    await _contract(h, "K-d", "C-1002", 29.5, 90_000, now, past_contracts=5)
    await db["renewal_reminders"].insert_one({"_id": "K-d:30", "contract": "K-d", "offset": 30, "status": "pending", "at": now})
    target = await svc.renewals._pref_customer(await db["crm_customers"].find_one({"_id": "C-1002"}))
    assert target is not None
    await notify(Notification(target, Topic.RENEWAL, Importance.NORMAL, {"contract_id": "K-d"}, key="renewal:K-d:30"))

    early = await svc.renewals.scan()
    assert (early.sent, early.skipped) == (0, 1)  # K-d's claim is taken; pending but not stale: maybe still being sent
    clock.advance(120)
    later = await svc.renewals.scan()
    assert (later.sent, later.failed) == (2, 0)  # K-b and K-d finished
    recs = {r["_id"]: r async for r in db["renewal_reminders"].find({})}
    assert {r["status"] for r in recs.values()} == {"sent"}
    assert [a["action"] for a in recs["K-b:30"]["actions"]] == ["notify_contact", "legal_review"]
    assert {c["_id"] async for c in db["contracts"].find({"legal_review.required": True})} == {"K-b", "K-c"}
    # Once each: to the customer, and to the CTO for the big ones (K-d is small).
    assert [await renewal_notifications(c) for c in ("K-a", "K-b", "K-c", "K-d")] == [2, 2, 2, 1]
    contacts = [await db["notifications"].count_documents({"customer": f"contact:{e}"}) for e in ("cto@gulou-cold.example.cn", "cto@lakefoods.example.cn")]
    assert contacts == [2, 1]  # K-b and K-c to C-1001's CTO, K-a to C-1002's

    clock.advance(120)
    assert (await svc.renewals.scan()).sent == 0


async def test_daily_run_is_once_a_day_after_its_time(plain_gateway: Harness) -> None:
    svc = services(plain_gateway)
    clock = ManualClock(START.replace(hour=8))
    svc.renewals.clock = clock
    assert await svc.renewals.run_daily() is None  # before 09:00
    clock.advance(2 * 3600)
    assert await svc.renewals.run_daily() is not None
    assert await svc.renewals.run_daily() is None  # once per day, also from another worker
    clock.advance(DAY)
    assert await svc.renewals.run_daily() is not None


async def test_rules_api_needs_scope_and_valid_rules(plain_gateway: Harness) -> None:
    c = plain_gateway.client
    assert (await c.get("/api/renewal/rules")).status == 401
    bad = await c.put("/api/renewal/rules/x", json={**BIG_DEAL, "when": {"field": "a", "op": "eval", "value": 1}}, headers=auth())
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "when.op"
    assert (await c.put("/api/renewal/rules/big", json=BIG_DEAL, headers=auth())).status == 200
    rules = (await (await c.get("/api/renewal/rules", headers=auth())).json())["rules"]
    assert [r["id"] for r in rules] == ["big"] and rules[0]["version"] == 1
    assert (await c.delete("/api/renewal/rules/big", headers=auth())).status == 200


async def test_chat_quotes_then_opens_an_opportunity_with_a_todo(gateway: Harness) -> None:
    chat = SkillChat(gateway, "oDemoEnglish")  # C-1002's WeChat identity in the demo data
    quote = chat.texts(await chat.say("how much would it cost to renew for another year"))
    assert "K-2025-002" in quote and "1,287,500" in quote, quote  # 1,250,000 + 3 %
    done = chat.texts(await chat.say("ok please go ahead with the renewal"))
    assert "Lin Na" in done and "requested" in done
    opp = await services(gateway).db["renewal_opportunities"].find_one({"contract": "K-2025-002"})
    assert opp is not None and opp["todo"] and not opp["todo_failed"]
    assert "already in progress" in chat.texts(await chat.say("ok please go ahead with the renewal"))


async def test_legal_review_rule_hands_the_chat_to_a_person(gateway: Harness) -> None:
    svc = services(gateway)
    await svc.renewals.put_rule("small", SMALL_NEW)
    await svc.db["crm_customers"].update_one({"_id": "C-1001"}, {"$addToSet": {"identities": "wechat:demo:oLegal"}})
    chat = SkillChat(gateway, "oLegal")
    text = chat.texts(await chat.say("我要续约"))
    assert "法务" in text
    waiting = await gateway.runtime.handoff.waiting()
    assert [w["conversation"] for w in waiting] == ["wechat:demo:oLegal"]
