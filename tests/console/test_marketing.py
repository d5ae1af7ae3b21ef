"""The marketers' workspace over HTTP (no JavaScript): customers, layers, templates, rules."""

from __future__ import annotations

import re
import time
from typing import Any
from admin.i18n import LANGUAGES, TEXT
from admin.roles import Role
from preferences.model import Frequency, Topic
from preferences.services import PreferenceServices
from skills.services import SkillServices
from tests.console.conftest import ConsoleRig

DAY = 86_400.0


def services(rig: ConsoleRig) -> tuple[PreferenceServices, SkillServices]:
    deps = rig.console.deps
    assert deps.preferences is not None and deps.skills is not None
    return deps.preferences, deps.skills


async def seed_customers(prefs: PreferenceServices) -> None:
    store = prefs.prefs
    await store.create("c-li", profile={"name": "李雷", "phone": "13812345678"}, segments=["vip"],
                       settings={"addresses": {"wechat": {"account": "demo", "openid": "oLiLei"}}}, actor="crm-import", via="api")
    await store.create("c-han", profile={"name": "韩梅梅", "phone": "13900001111"},
                       settings={"addresses": {"wechat": {"account": "demo", "openid": "oHan"}}}, actor="crm-import", via="api")
    # Han chose immediate renewal reminders herself, in chat.
    await store.change("c-han", {"topics": {"renewal": {"frequency": "immediate"}}}, actor="c-han", via="chat")
    # An import set Li's detail level; a marketer may undo that.
    await store.change("c-li", {"topics": {"repair": {"detail": "full"}}}, actor="crm-import", via="api")


async def seed_boards(prefs: PreferenceServices, sk: SkillServices) -> None:
    """Reviews behind a carrier's figures, a ticket whose outside step failed, an export."""
    now = time.time()
    await sk.db["reviews"].insert_many([
        {"_id": f"amazon:{i}", "kind": "logistics", "carrier": "顺丰", "received_at": now - i * 2 * DAY, "breach": i % 2 == 0, "days_late": 2,
         "rating": 1, "text": f"快递晚了 {i} 天", "status": "resolved", "resolved_at": now - i * 2 * DAY + 3600} for i in range(8)
    ])
    await sk.db["carrier_stats"].insert_one({"_id": "顺丰", "logistics_reviews": 8, "breaches": 4, "delay_known": 8, "delay_days": 16, "resolved_48h": 8})
    await sk.tickets.open(customer="wechat:demo:oX", conversation="wechat:demo:oX", source_message="m-old", fields={"device_model": "XK-1"})
    await sk.tickets.record("m-old", {"attention": {"reason": "servicenow failed", "at": now}}, [{"at": now, "step": "incident", "ok": False}])
    await prefs.rights.export_my_data("c-li", via="api")


async def test_search_customer_page_sources_and_undo(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    await seed_customers(prefs)
    mo = await rig.person("mo", Role.MARKETER)
    for query, expect in (("name=李", "c-li"), ("phone=138-1234-5678", "c-li"), ("identity=oHan", "c-han"),
                          ("identity=c-li", "c-li"), ("segment=vip", "c-li")):
        page = await (await mo.get(f"/admin/marketing/customers?{query}")).text()
        assert f'data-customer="{expect}"' in page, query
        assert "13812345678" not in page and ("138****5678" in page or expect != "c-li")
    assert 'data-customer="c-han"' not in await (await mo.get("/admin/marketing/customers?segment=vip")).text()

    page = await (await mo.get("/admin/marketing/customers/c-han")).text()
    renewal = re.search(r'data-path="topics.renewal.frequency">(.*?)</td>', page, re.S)
    assert renewal and "客户本人选择" in renewal.group(1)
    assert "客户本人的选择，不能撤销" in page
    # Undoing the customer's own choice is refused and changes nothing.
    resp = await mo.post("/admin/marketing/customers/c-han/revert", {"version": "2"}, headers={"Referer": rig.base + "/admin/marketing/customers/c-han"})
    assert resp.status == 303
    assert (await prefs.prefs.get("c-han"))["settings"]["topics"]["renewal"]["frequency"] == "immediate"

    page = await (await mo.get("/admin/marketing/customers/c-li")).text()
    detail = re.search(r'data-path="topics.repair.detail">(.*?)</td>', page, re.S)
    assert detail and "为该客户单独设置" in detail.group(1)
    assert "分群：vip" not in page  # no value comes from the vip segment, which sets nothing
    resp = await mo.post("/admin/marketing/customers/c-li/revert", {"version": "2"})
    assert resp.status == 303
    assert "detail" not in ((await prefs.prefs.get("c-li"))["settings"].get("topics", {}).get("repair", {}))
    audit = await rig.console.audit.recent(target="c-li")
    assert audit[0].action == "preferences.revert" and audit[0].actor == "mo"


async def test_default_change_preview_counts_and_save(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    await seed_customers(prefs)
    mo = await rig.person("mo", Role.MARKETER)
    form = {"topics.renewal.frequency": "weekly", "quiet_hours": "inherit"}
    page = await (await mo.post("/admin/marketing/layers/default", {**form, "action": "preview"})).text()
    count = re.search(r'id="affected-count">(\d+)<', page)
    assert count and count.group(1) == "1"  # Li; Han chose immediate herself
    assert await prefs.prefs.get_layer("default") == {}  # a preview saves nothing
    assert (await mo.post("/admin/marketing/layers/default", {**form, "action": "save"})).status == 303
    assert (await prefs.prefs.get_layer("default"))["topics"]["renewal"]["frequency"] == "weekly"
    assert (await prefs.prefs.effective("c-li")).topics[Topic.RENEWAL].frequency is Frequency.WEEKLY
    assert (await prefs.prefs.effective("c-han")).topics[Topic.RENEWAL].frequency is Frequency.IMMEDIATE
    bad = await mo.post("/admin/marketing/layers/default", {"topics.renewal.at": "25:99", "action": "save"})
    assert bad.status == 400 and "25:99" in await bad.text()


async def test_template_refused_when_broken_then_saved_and_restored(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    mo = await rig.person("mo", Role.MARKETER)
    before = prefs.renderer.render("renewal", "zh", "wechat", data={"contract_id": "K-1"}, detail="standard")
    broken = await mo.post("/admin/marketing/templates/save", {"key": "zh/renewal.j2", "source": "【续约】{{ data.contract_id "})
    assert broken.status == 400
    assert "line 1" in await broken.text()
    assert await prefs.templates.versions("zh/renewal.j2") == []
    ok = await mo.post("/admin/marketing/templates/save", {"key": "zh/renewal.j2", "source": "【续约通知】合同 {{ data.get('contract_id') }} 即将到期"})
    assert ok.status == 303
    assert prefs.renderer.render("renewal", "zh", "wechat", data={"contract_id": "K-1"}, detail="standard") == "【续约通知】合同 K-1 即将到期"
    diff = await (await mo.get("/admin/marketing/templates/diff?key=zh/renewal.j2&a=0&b=1")).text()
    assert "+【续约通知】" in diff
    assert (await mo.post("/admin/marketing/templates/rollback", {"key": "zh/renewal.j2", "version": "0"})).status == 303
    assert prefs.renderer.render("renewal", "zh", "wechat", data={"contract_id": "K-1"}, detail="standard") == before


async def test_rule_dry_run_lists_todays_contracts(rig: ConsoleRig) -> None:
    _, sk = services(rig)
    now = time.time()
    await sk.db["contracts"].delete_many({})
    for cid, days, amount in (("K-BIG", 25, 2_000_000), ("K-SMALL", 25, 50_000), ("K-LATER", 200, 3_000_000)):
        await sk.db["contracts"].insert_one({"_id": cid, "customer": "C-1", "end": now + days * DAY, "amount": amount})
    mo = await rig.person("mo", Role.MARKETER)
    rule = {"name": "big", "when": '{"field": "amount", "op": ">", "value": 1000000}', "then": '[{"action": "sales_todo"}]', "enabled": "on"}
    page = await (await mo.post("/admin/marketing/rules/big", {**rule, "action": "dry_run"})).text()
    assert re.findall(r'data-contract="([^"]+)"', page) == ["K-BIG"]
    assert await sk.renewals.get_rule("big") is None  # a dry run stores nothing
    bad = await mo.post("/admin/marketing/rules/big", {**rule, "when": '{"field": "amount", "op": "__import__", "value": 1}', "action": "save"})
    assert bad.status == 400 and "when.op" in await bad.text()
    assert (await mo.post("/admin/marketing/rules/big", {**rule, "action": "save"})).status == 303
    assert (await mo.post("/admin/marketing/rules/big/enabled", {"enabled": "false"})).status == 303
    assert (await sk.renewals.get_rule("big") or {})["enabled"] is False
    assert [v["version"] for v in await sk.renewals.rule_history("big")] == [2, 1]
    assert (await mo.post("/admin/marketing/rules/big/restore", {"version": "1"})).status == 303
    restored = await sk.renewals.get_rule("big") or {}
    assert (restored["enabled"], restored["version"]) == (True, 3)
    assert [a.action for a in await rig.console.audit.recent(target="big")] == ["renewal.rule_restore", "renewal.rule_enabled", "renewal.rule"]


async def test_agents_cannot_open_the_workspace(rig: ConsoleRig) -> None:
    al = await rig.person("al", Role.AGENT)
    for path in ("/admin/marketing/customers", "/admin/marketing/layers", "/admin/marketing/templates", "/admin/marketing/rules"):
        assert (await al.get(path)).status == 403


def test_every_word_in_both_languages() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "admin" / "templates"
    used = {m for p in root.rglob("*.html") for m in re.findall(r"\bt\('([a-z0-9_]+)'", p.read_text(encoding="utf-8"))}
    # A key ending in _ is a prefix completed at render time (t('topic_' ~ name)).
    missing = sorted(k for k in used if k not in TEXT and not (k.endswith("_") and any(t.startswith(k) for t in TEXT)))
    assert not missing, missing
    assert all(len(pair) == len(LANGUAGES) and all(pair) for pair in TEXT.values())



async def test_activity_counts_outcomes_and_drills_down(rig: ConsoleRig) -> None:
    prefs, _ = services(rig)
    await seed_customers(prefs)
    engine = prefs.engine
    await prefs.prefs.change("c-li", {"topics": {"marketing": {"opted_out": True}, "renewal": {"frequency": "daily"}}, "quiet_hours": None},
                             actor="c-li", via="chat")
    await engine.notify("c-li", "marketing", "normal", {"title": "冬季保养"}, key="m1")  # opted out: suppressed
    await engine.notify("c-li", "renewal", "normal", {"contract_id": "K-1"}, key="r1")  # daily: digest
    await engine.notify("c-han", "renewal", "critical", {"contract_id": "K-2"}, key="r2")  # critical: sent now
    assert await prefs.activity.rollup() == 3
    mo = await rig.person("mo", Role.MARKETER)
    page = await (await mo.get("/admin/marketing/activity?days=7")).text()
    totals = dict(re.findall(r'data-outcome="(\w+)"[^>]*><strong>(\d+)</strong>', page))
    assert (totals["sent"], totals["digest"], totals["suppressed"], totals["held"]) == ("1", "1", "1", "0")
    assert "suppressed: no_consent" in page  # the suppression's reason: marketing needs consent first
    assert "chart-4.5.0.umd.min.js" in page
    drill = await (await mo.get("/admin/marketing/activity/notifications?days=7&outcome=digest")).text()
    assert re.findall(r'<td class="mono"><a href="/admin/marketing/customers/([^"]+)"', drill) == ["c-li"]
    only_renewal = await (await mo.get("/admin/marketing/activity?days=7&topic=renewal")).text()
    assert dict(re.findall(r'data-outcome="(\w+)"[^>]*><strong>(\d+)</strong>', only_renewal))["suppressed"] == "0"
    sched = await (await mo.get("/admin/marketing/schedule")).text()
    assert "1 份汇总" in sched  # Li's daily digest is on the 7-day calendar


async def test_boards_show_carriers_tickets_and_data_requests(rig: ConsoleRig) -> None:
    prefs, sk = services(rig)
    await seed_customers(prefs)
    await seed_boards(prefs, sk)
    mo = await rig.person("mo", Role.MARKETER)
    board = await (await mo.get("/admin/marketing/carriers?carrier=顺丰")).text()
    assert "50.0%" in board and "快递晚了 3 天" in board and '"顺丰"' in board  # the chart's series
    repair = await (await mo.get("/admin/marketing/repair")).text()
    assert "servicenow failed" in repair and "incident ✗" in repair
    requests = await (await mo.get("/admin/marketing/data-requests")).text()
    assert 'data-kind="export"' in requests and "c-li" in requests


async def test_junk_in_the_workspace_is_refused_in_one_line_and_changes_nothing(rig: ConsoleRig, caplog: Any) -> None:
    prefs, sk = services(rig)
    await seed_customers(prefs)
    mo = await rig.person("mo", Role.MARKETER)
    junk = [
        ("/admin/marketing/layers/default", {"channels": "fax", "action": "save"}),
        ("/admin/marketing/layers/default", {"topics.renewal.weekday": "九", "action": "save"}),
        ("/admin/marketing/layers/segment:..%2F", {"action": "save"}),
        ("/admin/marketing/templates/save", {"key": "zh/../../etc/passwd.j2", "source": "x"}),
        ("/admin/marketing/templates/save", {"key": "zh/renewal.j2", "source": "{% for %}"}),
        ("/admin/marketing/rules/r1", {"name": "x", "when": "{not json", "then": "[]", "action": "save"}),
        ("/admin/marketing/rules/r1", {"name": "x", "when": '{"field": "a", "op": "==", "value": {"$where": 1}}', "then": '[{"action": "handoff"}]', "action": "save"}),
        ("/admin/marketing/customers/c-li/revert", {"version": "x"}),
        ("/admin/marketing/customers/c-li/segments", {"segments": "<script>"}),
    ]
    for path, form in junk:
        caplog.clear()
        with caplog.at_level("INFO"):
            resp = await mo.post(path, form)
        assert resp.status in (303, 400, 404), (path, resp.status)
        lines = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None, (path, [r.getMessage() for r in caplog.records])
    assert await prefs.prefs.get_layer("default") == {}
    assert await prefs.templates.edited() == {}
    assert await sk.renewals.get_rule("r1") is None
    assert (await prefs.prefs.get("c-li"))["segments"] == ["vip"]
    assert [a.action for a in await rig.console.audit.recent()] == []
