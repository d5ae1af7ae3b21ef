"""The portal's modules, used the way a customer uses them: signed in from a WeChat link."""

from __future__ import annotations

import io
import logging
import json
import re
from typing import Any

import pyzipper

from preferences.model import Importance, Notification, Topic
from skills.services import SKILL_SERVICES
from tests.portal import seed
from tests.portal.conftest import PortalRig


async def test_my_tickets_timeline_qr_and_rating(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-tickets")
    t = await seed.ticket(rig, "o-tickets", customer)
    listing = await who.page("/portal/tickets")
    assert t["number"] in listing and "已派单" in listing
    page = await who.page(f"/portal/tickets/{t['_id']}")
    assert "王师傅" in page and "匹配工程师" in page and "14:30" in page
    qr = await who.get(f"/portal/tickets/{t['_id']}/qr.png")
    assert qr.status == 200 and (await qr.read()).startswith(b"\x89PNG")
    # Not rateable before the visit is done.
    refused = await who.post(f"/portal/tickets/{t['_id']}/rating", {"stars": "5"}, headers={"Referer": f"{rig.base}/portal/tickets/{t['_id']}"})
    assert refused.status == 303
    assert "once the repair is done" in await who.page(f"/portal/tickets/{t['_id']}")
    await rig.deps.repair.set_status(t["_id"], "done")
    resp = await who.post(f"/portal/tickets/{t['_id']}/rating", {"stars": "4", "comment": "准时，<b>专业</b>"})
    assert resp.status == 303
    stored = await rig.deps.tickets.get(t["_id"])
    assert stored is not None and stored["rating"]["stars"] == 4 and stored["timeline"][-1]["step"] == "rated"
    page = await who.page(f"/portal/tickets/{t['_id']}")
    assert "您的评价：4 星" in page
    audit = await rig.portal.audit.recent(customer)
    assert audit[0]["action"] == "ticket.rate" and audit[0]["after"]["comment"] == "准时，<b>专业</b>"


async def test_my_contracts_quotes_and_a_renewal_request(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-contracts")
    ids = await seed.contracts(rig, "o-contracts", customer, "C-77")
    page = await who.page("/portal/contracts")
    assert ids[0] in page and ids[1] in page
    assert "CNY 1,250,000" in page and "CNY 1,287,500" in page  # the quote: 3 % uplift, rounded
    resp = await who.post(f"/portal/contracts/{ids[0]}/renew")
    assert resp.status == 303
    again = await who.post(f"/portal/contracts/{ids[0]}/renew")  # one request per term
    assert again.status == 303
    opportunities = [o async for o in rig.deps.db["renewal_opportunities"].find({"contract": ids[0]})]
    assert len(opportunities) == 1 and opportunities[0]["via"] == "portal"
    assert "已申请：处理中" in await who.page("/portal/contracts")


async def test_weekly_repair_digest_set_in_the_portal_governs_the_next_status_notification(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-notify")
    t = await seed.ticket(rig, "o-notify", customer, status="new")
    page = await who.page("/portal/notify")
    assert "维修进度" in page and "每周汇总" in page
    form = {"repair.present": "1", "repair.frequency": "weekly", "repair.detail": "brief", "quiet_start": "21:00", "quiet_end": "07:30", "language": "zh"}
    assert (await who.post("/portal/notify", form)).status == 303
    prefs = await rig.deps.prefs.effective(customer)
    assert prefs.topics[Topic.REPAIR].frequency.value == "weekly" and prefs.quiet_hours is not None
    sent_before = len(rig.harness.fake.sent_to("o-notify"))
    await rig.deps.repair.set_status(t["_id"], "assigned")  # a normal update (high ones go at once: policy table)
    note = await rig.deps.db["notifications"].find_one({"customer": customer, "topic": "repair"})
    assert note is not None and note["action"] == "digest" and note["period"] == "weekly"
    assert len(rig.harness.fake.sent_to("o-notify")) == sent_before  # nothing pushed now
    # The change is in the history with who made it, and can be undone.
    page = await who.page("/portal/notify")
    assert "您本人" in page and "账户页面" in page
    history = await rig.deps.prefs.list_history(customer)
    assert history[0]["actor"] == customer and history[0]["via"] == "portal"
    undo = await who.post(f"/portal/notify/undo/{history[0]['version']}")
    assert undo.status == 303
    prefs = await rig.deps.prefs.effective(customer)
    assert prefs.topics[Topic.REPAIR].frequency.value == "immediate"
    actions = [a["action"] for a in await rig.portal.audit.recent(customer)]
    assert actions[:2] == ["preferences.rollback", "preferences.change"]


async def test_a_bad_setting_is_refused_and_changes_nothing(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-notify-bad")
    before = await rig.deps.prefs.effective_layer(customer)
    resp = await who.post("/portal/notify", {"repair.frequency": "hourly"}, headers={"Referer": f"{rig.base}/portal/notify"})
    assert resp.status == 303
    assert "unknown value &#39;hourly&#39;" in await who.page("/portal/notify")
    assert await rig.deps.prefs.effective_layer(customer) == before
    no_csrf = await who.post("/portal/notify", {"repair.frequency": "daily"}, csrf=False)
    assert no_csrf.status == 403
    assert await rig.deps.prefs.effective_layer(customer) == before


async def test_cto_rule_previews_over_recent_notifications_and_copies_a_big_quote(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-rules")
    notifier = rig.harness.client.app[SKILL_SERVICES].notifier
    for n, amount in enumerate(("CNY 1,287,500", "CNY 49,400")):
        await notifier.notify(Notification(customer, Topic.RENEWAL, Importance.NORMAL, {"contract_id": f"K-{n}", "amount": amount}, key=f"old-{n}"))
    draft = {"topic": "renewal", "condition": "amount_over", "value": "1,000,000", "email": "CTO@example.cn"}
    preview = await who.post("/portal/rules/preview", draft)
    text = await preview.text()
    assert preview.status == 200 and "最近 2 条通知中有 1 条会触发此规则" in text and "CNY 1,287,500" in text
    assert await rig.deps.rules.of_customer(customer) == []  # a preview saves nothing
    assert (await who.post("/portal/rules", draft)).status == 303
    [rule] = await rig.deps.rules.of_customer(customer)
    assert rule.email == "cto@example.cn" and rule.value == "1000000"
    # The renewal scan's next reminder over CNY 1,000,000 also goes to the CTO.
    await seed.contracts(rig, "o-rules", customer, "C-88", amount=1_250_000)
    report = await rig.harness.client.app[SKILL_SERVICES].renewals.scan()
    assert report.sent >= 1
    copy = await rig.deps.db["notifications"].find_one({"customer": "contact:cto@example.cn"})
    assert copy is not None and copy["topic"] == "renewal" and "1,287,500" in copy["data"]["amount"]
    small = await rig.deps.db["notifications"].count_documents({"customer": "contact:cto@example.cn", "data.amount": "CNY 49,400"})
    assert small == 0


async def test_my_data_counts_voice_notes_and_an_encrypted_export(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-data")
    await seed.ticket(rig, "o-data", customer)
    mid = await seed.voice_note(rig, "o-data")
    page = await who.page("/portal/data")
    assert "语音消息" in page and "whisper-base (faster-whisper 1.2.1)" in page and "空调不制冷了" in page
    assert "音频保存在本系统数据库" in page  # the copy kept at arrival, not only the platform's reference
    counts = await rig.deps.rights.counts(customer)
    assert counts["tickets"] == 1 and counts["voice_notes"] == 1 and counts["messages"] >= 2
    assert (await who.post(f"/portal/data/voice/{mid}/delete-audio")).status == 303
    stored = await rig.harness.runtime.store.messages.find_one({"_id": mid})
    assert stored is not None and stored["media"]["media_id"] is None and stored["transcript"]["text"] == "空调不制冷了"
    assert await rig.harness.runtime.store.messages.database["voice_notes"].find_one({"_id": mid}) is None  # the audio itself
    assert "已删除" in await who.page("/portal/data")
    resp = await who.post("/portal/data/export", {"format.json": "1", "format.csv": "1"})
    assert resp.status == 303
    landing = await who.page(resp.headers["Location"].split("#")[0])
    password = re.search(r'id="export-password">([^<]+)<', landing)
    download = re.search(r'href="(/portal/data/exports/[0-9a-f]+)"', landing)
    assert password and download
    assert password.group(1) not in await who.page(resp.headers["Location"].split("#")[0])  # shown once
    body = await (await who.get(download.group(1))).read()
    assert password.group(1).encode() not in body
    with pyzipper.AESZipFile(io.BytesIO(body)) as zf:
        assert not any(n.startswith("parquet/") for n in zf.namelist())
        zf.setpassword(password.group(1).encode())
        data = json.loads(zf.read("data.json"))
    assert [t["device_model"] for t in data["tickets"]] == ["XK-8800"]
    actions = [a["action"] for a in data["portal_audit"]]
    assert "voice.delete_audio" in actions and "data.export" in actions and "signin" in actions


async def test_erasure_request_confirmed_in_the_portal_leaves_an_audit_record(rig: PortalRig) -> None:
    who, customer = await rig.customer("o-erase")
    await seed.ticket(rig, "o-erase", customer)
    resp = await who.post("/portal/data/erase")
    assert resp.status == 303 and "erase=" in resp.headers["Location"]
    page = await who.page(resp.headers["Location"].split("#")[0])
    code = re.search(r'name="code" value="([^"]+)"', page)
    assert code and "等待您在 15 分钟内确认" in page
    done = await who.post("/portal/data/erase/confirm", {"code": code.group(1)})
    text = await done.text()
    assert done.status == 200 and "您的数据已删除" in text
    assert not await rig.deps.prefs.exists(customer)
    record = await rig.deps.db["pref_erasures"].find_one({"via": "portal"})
    assert record is not None and record["actor"] == "customer" and record["removed"]["tickets_anonymised"] == 1
    assert (await who.get("/portal/data")).status == 401  # the session ended with the data


async def test_junk_in_a_form_gets_a_clear_refusal_in_one_log_line_and_changes_nothing(rig: PortalRig, caplog: Any) -> None:
    who, customer = await rig.customer("o-junk")
    before = await rig.deps.prefs.effective_layer(customer)
    caplog.set_level(logging.INFO, logger="portal.access")
    caplog.clear()
    resp = await who.http.post(
        rig.base + "/portal/notify", data=b"_csrf=" + who.csrf.encode() + b"&language=%ff%fe",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": rig.base + "/portal/notify"}, allow_redirects=False,
    )
    assert resp.status == 303
    assert "could not be read" in await who.page("/portal/notify")
    assert await rig.deps.prefs.effective_layer(customer) == before
    refusals = [r for r in caplog.records if r.name == "portal.access"]
    assert len(refusals) == 1 and refusals[0].exc_info is None and "\n" not in refusals[0].getMessage()
    assert "o-junk" not in refusals[0].getMessage()
