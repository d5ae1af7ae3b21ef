"""Admin pages: users and roles with their audit trail, canned replies, channels, search."""

from __future__ import annotations

from admin.roles import Role
from tests.console.conftest import ConsoleRig, stored_inbound
from tests.console.test_inbox import CID, ask_for_a_person


async def test_user_admin_is_audited_before_and_after(rig: ConsoleRig) -> None:
    ada = await rig.person("ada", Role.ADMIN)
    assert (await ada.post("/admin/users", {"name": "newbie", "role": "agent", "password": "long enough pw", "language": "en"})).status == 303
    assert (await ada.post("/admin/users/newbie", {"role": "marketer"})).status == 303
    user = await rig.console.users.get("newbie")
    assert user is not None and user.role is Role.MARKETER and user.language == "en"
    page = await (await ada.get("/admin/audit")).text()
    assert "user.update" in page and "user.create" in page
    update = (await rig.console.audit.recent(target="newbie"))[0]
    assert (update.actor, update.before["role"], update.after["role"]) == ("ada", "agent", "marketer")
    # An admin cannot lock themselves out.
    await ada.post("/admin/users/ada", {"role": "agent"}, headers={"Referer": rig.base + "/admin/users"})
    me = await rig.console.users.get("ada")
    assert me is not None and me.role is Role.ADMIN


async def test_canned_replies_per_language_reach_the_agent(rig: ConsoleRig) -> None:
    ada = await rig.person("ada", Role.ADMIN)
    await ada.post("/admin/canned", {"language": "zh", "title": "稍等", "text": "请稍等，我马上为您查询。"})
    await ada.post("/admin/canned", {"language": "en", "title": "Wait", "text": "One moment please."})
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "请稍等，我马上为您查询。" in page and "One moment please." not in page  # the customer speaks Chinese
    await ada.post("/admin/canned", {"language": "zh", "title": "<b>粗体</b>", "text": "<script>x()</script>"})
    audit = await (await ada.get("/admin/audit")).text()
    assert "&lt;script&gt;x()&lt;/script&gt;" in audit and "<script>x()" not in audit
    assert "请稍等，我马上为您查询。" in audit  # readable, not \uXXXX


async def test_a_canned_reply_is_edited_in_place_or_refused_unchanged(rig: ConsoleRig) -> None:
    ada = await rig.person("ada", Role.ADMIN)
    reply = await rig.console.canned.add("zh", "稍等", "请稍等。")
    await ada.get("/admin/canned")
    back = {"Referer": rig.base + "/admin/canned"}
    for junk in ({"language": "zh", "title": " ", "text": "x"}, {"language": "fr", "title": "t", "text": "x"}, {"language": "zh", "title": "t", "text": "x" * 2001}):
        assert (await ada.post(f"/admin/canned/{reply.id}", junk, headers=back)).status in (303, 400)
    assert (await ada.post(f"/admin/canned/{reply.id}", {"language": "en", "title": "Wait", "text": "One moment."}, csrf=False)).status == 403
    assert await rig.console.canned.all() == [reply]  # nothing changed
    assert (await ada.post("/admin/canned/nothing", {"language": "zh", "title": "t", "text": "x"}, headers=back)).status == 303
    assert "no such canned reply" in await (await ada.get("/admin/canned")).text()
    assert (await ada.post(f"/admin/canned/{reply.id}", {"language": "en", "title": " Wait ", "text": "One moment."})).status == 303
    (changed,) = await rig.console.canned.all()
    assert (changed.id, changed.language, changed.title, changed.text) == (reply.id, "en", "Wait", "One moment.")
    entry = (await rig.console.audit.recent())[0]
    assert entry.action == "canned.change" and entry.before == {"language": "zh", "title": "稍等", "text": "请稍等。"}
    assert entry.after == {"language": "en", "title": "Wait", "text": "One moment."}


async def test_channels_page_hides_secrets_and_shows_webhook_urls(rig: ConsoleRig) -> None:
    ada = await rig.person("ada", Role.ADMIN)
    page = await (await ada.get("/admin/channels")).text()
    assert "/wechat/demo" in page and "/wechat/plain" in page
    assert "test-secret" not in page and "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" not in page and "testtoken123" not in page
    assert "***" in page


async def test_search_by_text_customer_and_date(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await rig.harness.say("oInbox", "我的订单号是 A-1234")
    await stored_inbound(rig, CID, "A-1234")
    page = await (await alice.get("/admin/search?text=A-1234")).text()
    assert CID in page
    page = await (await alice.get("/admin/search?text=A-1234&channel=email")).text()
    assert CID not in page
    page = await (await alice.get("/admin/search?customer=oInbox&since=2000-01-01&until=2100-01-01")).text()
    assert CID in page
    resp = await alice.get("/admin/search?since=yesterday", headers={"Accept": "text/html"})
    assert resp.status == 400 and "YYYY-MM-DD" in await resp.text()


async def test_api_key_made_in_the_console_opens_its_scope_until_revoked(rig: ConsoleRig) -> None:
    import re

    import aiohttp

    ada = await rig.person("ada", Role.ADMIN)
    resp = await ada.http.post(
        rig.base + "/admin/apikeys", data={"_csrf": ada.csrf, "label": "CRM", "scopes": "conversations:read"}, allow_redirects=False
    )
    page = await resp.text()
    found = re.search(r'<code id="created-key">([^<]+)</code>', page)
    assert resp.status == 200 and found is not None
    key = found.group(1)
    async with aiohttp.ClientSession() as api:
        headers = {"Authorization": f"Bearer {key}"}
        async with api.get(rig.base + "/api/conversations/waiting", headers=headers) as r:
            assert r.status == 200
        async with api.post(rig.base + "/api/conversations/x/claim", headers=headers, json={"agent": "ada"}) as r:
            assert r.status == 403  # only the scope it was given
        info = (await rig.console.deps.api_keys.all())[0]  # type: ignore[union-attr]
        assert key not in page.replace(f'<code id="created-key">{key}</code>', "")  # shown exactly once
        assert (await ada.post(f"/admin/apikeys/{info.id}/revoke")).status == 303
        async with api.get(rig.base + "/api/conversations/waiting", headers=headers) as r:
            assert r.status == 401
    actions = [e.action for e in await rig.console.audit.recent()]
    assert actions[:2] == ["apikey.revoke", "apikey.create"]


async def test_customer_card_shows_ticket_and_preferences(rig: ConsoleRig) -> None:
    from preferences import services as preferences
    from skills import services as business

    app = rig.harness.client.app
    await app[preferences.SERVICES].prefs.create(
        "cust-li", settings={"channels": ["wechat", "email"], "language": "zh",
                             "addresses": {"wechat": {"account": "demo", "openid": "oInbox"}, "email": {"address": "li@example.cn"}}},
    )
    await app[business.SKILL_SERVICES].tickets.open(
        customer=CID, conversation=CID, source_message="m1", fields={"device_model": "XK-8800", "fault": "不制冷", "address": "南京"},
    )
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "维修工单" in page and "XK-8800" in page and " · new" in page
    assert "联系偏好" in page and "wechat→ email" in page
