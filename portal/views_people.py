"""Who on the customer's side may see what: invite a colleague by email or phone with
chosen modules, revoke, see when each person last looked."""

from __future__ import annotations

from aiohttp import web

from portal.access import render, take_flash
from portal.links import Grant
from portal.members import GRANTABLE, Module
from portal.state import PortalRoute, portal, viewer
from webui.forms import fields, one

INVITE_LINK = "kefu:portal:invite-shown:"


async def people(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    members = await p.members.of_customer(who.customer)
    # A fresh invitation's link is shown once, right after it was made, then forgotten.
    shown = request.query.get("invited", "")
    link = ""
    if shown:
        raw = await p.deps.redis.getdel(INVITE_LINK + who.customer + ":" + shown[:32])
        link = "" if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))
    return render(request, "people.html", members=members, grantable=GRANTABLE, invite_link=link, invited=shown, flash=await take_flash(request))


async def invite(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    data = await fields(request)
    contact = one(data, "contact", max_len=200)
    modules = [m.value for m in GRANTABLE if data.get(f"module.{m.value}")]
    member = await p.members.invite(who.customer, contact, modules, invited_by=who.actor)
    link = await p.deps.links.issue(Grant(who.customer, member.id), ttl_s=p.settings.invite_ttl_s)
    await p.deps.redis.set(INVITE_LINK + who.customer + ":" + member.id, link, ex=300)
    await p.audit.record(who, "member.invite", member.id, after={"contact": member.contact, "modules": modules})
    raise web.HTTPSeeOther(f"/portal/people?invited={member.id}")


async def new_link(request: web.Request) -> web.StreamResponse:
    """POST /portal/people/{mid}/link: another one-time link for a colleague (the last expired)."""
    p = portal(request)
    who = viewer(request)
    member = await p.members.get(who.customer, request.match_info["mid"])
    if member.revoked_at is not None:
        raise web.HTTPSeeOther("/portal/people")
    link = await p.deps.links.issue(Grant(who.customer, member.id), ttl_s=p.settings.invite_ttl_s)
    await p.deps.redis.set(INVITE_LINK + who.customer + ":" + member.id, link, ex=300)
    await p.audit.record(who, "member.link", member.id)
    raise web.HTTPSeeOther(f"/portal/people?invited={member.id}")


async def revoke(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    member = await p.members.revoke(who.customer, request.match_info["mid"])
    await p.audit.record(who, "member.revoke", member.id, before={"contact": member.contact, "modules": [m.value for m in member.modules]})
    raise web.HTTPSeeOther("/portal/people")


ROUTES = (
    PortalRoute("GET", "/people", people, Module.PEOPLE, "people"),
    PortalRoute("POST", "/people", invite, Module.PEOPLE, "people_invite"),
    PortalRoute("POST", "/people/{mid}/link", new_link, Module.PEOPLE, "people_link"),
    PortalRoute("POST", "/people/{mid}/revoke", revoke, Module.PEOPLE, "people_revoke"),
)
