"""Who may see what: colleagues with scoped modules, revocation, the role x module matrix,
and a customer who tries every route with another customer's ids."""

from __future__ import annotations

from typing import Any

from portal.app import portal_routes
from portal.members import GRANTABLE, Module
from preferences.model import Importance, Notification, Topic
from skills.services import SKILL_SERVICES
from tests.portal import seed
from tests.portal.conftest import LINK, PortalRig, Visitor


async def invite(owner: Visitor, contact: str, *modules: str) -> tuple[str, str]:
    """(member id, the one-time link shown to the account holder)."""
    resp = await owner.post("/portal/people", {"contact": contact, **{f"module.{m}": "1" for m in modules}})
    assert resp.status == 303, await resp.text()
    member = resp.headers["Location"].split("invited=")[1]
    page = await owner.page(resp.headers["Location"])
    found = LINK.search(page)
    assert found, page
    return member, found.group()


async def test_a_colleague_limited_to_contracts_sees_only_contracts(rig: PortalRig) -> None:
    owner, customer = await rig.customer("o-cfo-owner")
    await seed.contracts(rig, "o-cfo-owner", customer, "C-CFO")
    await seed.ticket(rig, "o-cfo-owner", customer)
    member, link = await invite(owner, "CFO@Example.cn", "contracts")
    assert LINK.search(await owner.page(f"/portal/people?invited={member}")) is None  # the link was shown once
    cfo = rig.visitor()
    assert (await cfo.open_link(link)).status == 303
    home = await cfo.page("/portal/")
    assert "我的合同" in home and "我的报修" not in home and "授权同事" not in home and "cfo@example.cn" in home
    assert "K-C-CFO-1" in await cfo.page("/portal/contracts")
    for path in ("/portal/tickets", "/portal/notify", "/portal/rules", "/portal/data", "/portal/people"):
        assert (await cfo.get(path)).status == 403, path
    assert (await cfo.post("/portal/people", {"contact": "x@example.cn", "module.contracts": "1"})).status == 403
    people = await owner.page("/portal/people")
    assert "cfo@example.cn" in people and "从未" not in people  # last seen is recorded
    # Revoked: the colleague's open session stops working at once.
    assert (await owner.post(f"/portal/people/{member}/revoke")).status == 303
    assert (await cfo.get("/portal/contracts")).status == 401
    audit = [a["action"] for a in await rig.portal.audit.recent(customer)]
    assert "member.invite" in audit and "member.revoke" in audit


async def test_invitations_refuse_junk_and_owner_only_modules(rig: PortalRig) -> None:
    owner, customer = await rig.customer("o-invite-junk")
    for form in ({"contact": "not an address", "module.tickets": "1"}, {"contact": "a@b.cn"}, {"contact": "a@b.cn", "module.data": "1"}):
        resp = await owner.post("/portal/people", form, headers={"Referer": f"{rig.base}/portal/people"})
        assert resp.status == 303 and "invited=" not in resp.headers["Location"]
    assert await rig.portal.members.of_customer(customer) == []


async def test_role_module_matrix_over_every_portal_route(rig: PortalRig) -> None:
    """Every declared route, for a visitor without a session, for a colleague holding
    each grantable module alone, and for the account holder."""
    owner, customer = await rig.customer("o-matrix")
    ids = await own_objects(rig, owner, customer, "o-matrix")
    declared = {(r.method, "/portal" + r.path) for r in portal_routes()}
    served = {(r.method, r.resource.canonical) for r in rig.harness.client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/portal/") and r.method != "HEAD"}
    assert served == declared  # nothing served without a declaration, nothing declared unserved
    people: dict[str, tuple[Visitor, frozenset[Module]]] = {}
    for module in GRANTABLE:
        _, link = await invite(owner, f"{module.value}@example.cn", module.value)
        colleague = rig.visitor()
        assert (await colleague.open_link(link)).status == 303
        people[module.value] = (colleague, frozenset({module}))
    people["owner"] = (owner, frozenset(Module))
    anonymous = rig.visitor()
    last = ("data_erase", "data_erase_confirm", "signout")  # these end what the others need
    routes = sorted(portal_routes(), key=lambda r: last.index(r.name) + 1 if r.name in last else 0)
    for route in routes:
        if route.module is None:
            continue
        path = "/portal" + route.path.format(**ids)
        resp = await call(anonymous, route.method, path)
        assert resp.status in (401, 403), (route.name, "anonymous", resp.status)  # 403: no CSRF session at all
        for name, (who, modules) in people.items():
            resp = await call(who, route.method, path)
            allowed = route.module == "any" or route.module in modules
            if allowed:
                assert resp.status not in (401, 403), (route.name, name, resp.status)
            else:
                assert resp.status == 403, (route.name, name, resp.status)


async def call(who: Visitor, method: str, path: str) -> Any:
    if method == "GET":
        return await who.get(path)
    return await who.post(path, {}, headers={"Referer": who.base + "/portal/"})


async def own_objects(rig: PortalRig, owner: Visitor, customer: str, openid: str) -> dict[str, str]:
    """One of each kind of object the customer has, by the route parameter naming it."""
    t = await seed.ticket(rig, openid, customer, status="done")
    contract_ids = await seed.contracts(rig, openid, customer, f"C-{openid}")
    mid = await seed.voice_note(rig, openid)
    member, _ = await invite(owner, f"lead-{openid}@example.cn", "tickets")
    rule = await rig.deps.rules.add(customer, "renewal", "amount_over", "1000", "cto@example.cn", created_by=customer)
    resp = await owner.post("/portal/data/export", {"format.json": "1"})
    export_id = resp.headers["Location"].split("export=")[1].split("#")[0]
    await rig.deps.prefs.change(customer, {"language": "zh"}, actor=customer, via="portal")
    version = str((await rig.deps.prefs.list_history(customer))[0]["version"])
    return {"tid": str(t["_id"]), "cid": contract_ids[0], "mid": member, "rid": rule.id, "eid": export_id,
            "version": version, "token": "x.1.y", "account": "demo", "name": "portal.css", "voice": mid}


async def test_another_customers_ids_reveal_and_change_nothing(rig: PortalRig) -> None:
    alice, alice_id = await rig.customer("o-alice")
    bob, bob_id = await rig.customer("o-bob")
    bobs = await own_objects(rig, bob, bob_id, "o-bob")
    notifier = rig.harness.client.app[SKILL_SERVICES].notifier
    await notifier.notify(Notification(bob_id, Topic.RENEWAL, Importance.NORMAL, {"amount": "CNY 7,777,777"}, key="bob-secret"))
    bob_ticket = await rig.deps.tickets.get(bobs["tid"])
    assert bob_ticket is not None
    secrets = ("o-bob", bob_ticket["number"], bobs["cid"], "lead-o-bob", "7,777,777", "空调不制冷了")
    before = await snapshot(rig, bob_id, bobs)
    for route in portal_routes():
        if route.module is None or route.name in ("signout",):
            continue
        path = "/portal" + route.path.format(**bobs)
        if route.name == "data_delete_audio":
            path = f"/portal/data/voice/{bobs['voice']}/delete-audio"
        resp = await call(alice, route.method, path)
        body = await resp.read()
        assert resp.status in (200, 303, 404), (route.name, resp.status)
        if route.method == "GET" and resp.status == 200 and resp.content_type == "text/html":
            text = body.decode()
            leaked = [s for s in secrets if s in text]
            assert not leaked, (route.name, leaked)
        assert resp.content_type != "application/zip" and not body.startswith(b"\x89PNG"), route.name
    assert await snapshot(rig, bob_id, bobs) == before
    assert await rig.deps.prefs.exists(bob_id)


async def snapshot(rig: PortalRig, customer: str, ids: dict[str, str]) -> dict[str, Any]:
    ticket = await rig.deps.tickets.get(ids["tid"])
    member = await rig.portal.members.get(customer, ids["mid"])
    voice = await rig.harness.runtime.store.messages.find_one({"_id": ids["voice"]})
    return {
        "rating": (ticket or {}).get("rating"), "revoked": member.revoked_at, "rules": [r.id for r in await rig.deps.rules.of_customer(customer)],
        "opportunities": await rig.deps.db["renewal_opportunities"].count_documents({"contract": ids["cid"]}),
        "audio": (voice or {}).get("media"), "settings": await rig.deps.prefs.effective_layer(customer),
    }
