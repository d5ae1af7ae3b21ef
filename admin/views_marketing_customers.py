"""Marketers' customer pages: search, effective preferences with their sources, the
change history with diffs, undoing one change, segment membership.

A value the customer chose themself is shown as such and offered no undo: marketers
work inside the limits each customer set.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin.marketing import prefs, refusing, version_field
from admin.roles import MARKETING
from admin.state import ConsoleRoute, console, current_user
from preferences.data_rights import mask_value
from preferences.model import Topic
from preferences.provenance import BUILTIN, DEFAULT, OWN, diff, effective, is_customers_own, own_setters
from preferences.store import DEFAULT_LAYER, segment_layer
from webui.errors import BadInput
from webui.forms import fields, one
from webui.sessions import SESSION

TOPIC_FIELDS = ("frequency", "detail", "opted_out", "at", "weekday")
GENERAL_FIELDS = ("channels", "language", "timezone", "quiet_hours")


def masked_profile(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_value(str(v)) if k in ("phone", "mobile", "tel", "id_number") and v else v for k, v in profile.items()}


def identities(doc: dict[str, Any]) -> list[str]:
    addresses = ((doc.get("settings") or {}).get("addresses") or {})
    return [f"{ch}: {mask_value(str(v))}" for ch, a in addresses.items() if a for k, v in a.items() if k != "account"]


async def customers(request: web.Request) -> web.StreamResponse:
    c = console(request)
    q = {k: request.query.get(k, "").strip()[:128] for k in ("name", "identity", "phone", "segment")}
    found = await prefs(request).prefs.search(name=q["name"], identity=q["identity"], phone=q["phone"], segment=q["segment"])
    rows = [
        {"id": str(d["_id"]), "profile": masked_profile(d.get("profile") or {}), "segments": d.get("segments") or [],
         "identities": identities(d)}
        for d in found
    ]
    layers = await prefs(request).prefs.list_layers()
    segments = sorted(str(d["_id"])[len("segment:"):] for d in layers if str(d["_id"]).startswith("segment:"))
    return await c.pages.render(request, "marketing/customers.html", q=q, rows=rows, searched=any(q.values()), segments=segments)


@refusing
async def customer(request: web.Request) -> web.StreamResponse:
    c = console(request)
    svc = prefs(request).prefs
    cid = request.match_info["cid"]
    doc = await svc.get(cid)
    history = await svc.list_history(cid)
    layers: list[tuple[str, dict[str, Any]]] = [(BUILTIN, dict(svc.book.defaults)), (DEFAULT, await svc.get_layer(DEFAULT_LAYER))]
    for seg in doc.get("segments") or ():
        layers.append((segment_layer(str(seg)), await svc.get_layer(segment_layer(str(seg)))))
    layers.append((OWN, doc.get("settings") or {}))
    values = effective(layers, own_setters(history))
    for s in values.values():
        if s.source == OWN:
            values[s.path] = s.__class__(s.path, s.value, "own_customer" if is_customers_own(cid, s.by, s.via) else "own_staff", s.by, s.via)
    topics = [{"topic": t.value, "fields": [values[f"topics.{t.value}.{f}"] for f in TOPIC_FIELDS]} for t in Topic]
    general = [values[f] for f in GENERAL_FIELDS if f in values]
    changes = [
        {"version": h["version"], "at": h["at"], "actor": h.get("actor", ""), "via": h.get("via", ""), "note": h.get("note", ""),
         "diff": diff(h.get("old") or {}, h.get("new") or {}),
         "own": is_customers_own(cid, str(h.get("actor", "")), str(h.get("via", "")))}
        for h in history
    ]
    consents = await svc.list_consents(cid)
    return await c.pages.render(
        request, "marketing/customer.html", cid=cid, profile=masked_profile(doc.get("profile") or {}),
        segments=doc.get("segments") or [], identities=identities(doc), topics=topics, general=general,
        changes=changes, consents=consents[:20], active_consents=doc.get("consents_active") or [],
    )


@refusing
async def revert(request: web.Request) -> web.StreamResponse:
    c = console(request)
    cid = request.match_info["cid"]
    version = await version_field(request)
    actor = current_user(request).name
    before = (await prefs(request).prefs.get(cid)).get("settings") or {}
    new_version, conflicts = await prefs(request).prefs.revert(cid, version, actor=f"console:{actor}", via="console")
    after = (await prefs(request).prefs.get(cid)).get("settings") or {}
    await c.audit.record(actor, "preferences.revert", cid, before=before, after={"settings": after, "reverted": version, "version": new_version})
    message = c.pages.text(request, "reverted", version=version)
    if conflicts:
        message += " " + c.pages.text(request, "revert_conflicts", paths=", ".join(conflicts))
    await c.sessions.set_flash(request[SESSION], message)
    raise web.HTTPSeeOther(f"/admin/marketing/customers/{cid}")


@refusing
async def set_segments(request: web.Request) -> web.StreamResponse:
    c = console(request)
    cid = request.match_info["cid"]
    data = await fields(request)
    wanted = [s.strip() for s in one(data, "segments", max_len=500, required=False).replace("，", ",").split(",") if s.strip()]
    if any(not s.replace("_", "").replace("-", "").isalnum() or len(s) > 40 for s in wanted):
        raise BadInput(c.pages.text(request, "segment_name_rule"))
    svc = prefs(request).prefs
    before = list((await svc.get(cid)).get("segments") or [])
    await svc.update_profile(cid, {}, wanted)
    await c.audit.record(current_user(request).name, "customer.segments", cid, before=before, after=wanted)
    raise web.HTTPSeeOther(f"/admin/marketing/customers/{cid}")


ROUTES = (
    ConsoleRoute("GET", "/marketing/customers", customers, MARKETING, "mk_customers"),
    ConsoleRoute("GET", "/marketing/customers/{cid}", customer, MARKETING, "mk_customer"),
    ConsoleRoute("POST", "/marketing/customers/{cid}/revert", revert, MARKETING, "mk_customer_revert"),
    ConsoleRoute("POST", "/marketing/customers/{cid}/segments", set_segments, MARKETING, "mk_customer_segments"),
)
