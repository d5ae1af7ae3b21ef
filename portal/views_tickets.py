"""My tickets: every repair with its timeline, the engineer's verification QR, a rating."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from portal.access import render, take_flash
from portal.members import Module
from portal.state import PortalRoute, portal, viewer
from skills.repair_dispatch.assign import qr_png
from skills.repair_dispatch.tickets import Ticket
from webui.errors import BadInput, NotFound
from webui.forms import fields, one

PAGE = 20


async def _identities(request: web.Request) -> list[str]:
    ids, _ = await portal(request).deps.rights.identities(viewer(request).customer)
    return sorted(ids)


async def _ticket(request: web.Request) -> Ticket:
    found = await portal(request).deps.tickets.of_customer_one(await _identities(request), request.match_info["tid"])
    if found is None:
        raise NotFound("no such ticket")
    return found


async def tickets(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    try:
        before = float(request.query["before"]) if "before" in request.query else None
    except ValueError:
        before = None
    # One more than a page tells whether older tickets exist, without counting them all.
    rows = await p.deps.tickets.of_customer(await _identities(request), before=before, limit=PAGE + 1)
    shown = rows[:PAGE]
    older = repr(float(shown[-1]["created_at"])) if len(rows) > PAGE else ""
    return render(request, "tickets.html", tickets=shown, paged=before is not None, older=older)


async def ticket(request: web.Request) -> web.StreamResponse:
    t = await _ticket(request)
    return render(request, "ticket.html", ticket=t, flash=await take_flash(request))


async def qr(request: web.Request) -> web.StreamResponse:
    """The engineer's verification QR, drawn from the signed link (nothing read from disk)."""
    t = await _ticket(request)
    engineer = t.get("engineer") or {}
    if not engineer.get("id"):
        raise NotFound("no engineer assigned yet")
    url = await portal(request).deps.repair.verify_url(str(t["_id"]), str(engineer["id"]))
    png = await asyncio.to_thread(qr_png, url)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, no-store"})


async def rate(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    t = await _ticket(request)
    if t.get("status") != "done":
        raise BadInput("a visit can be rated once the repair is done")
    data = await fields(request)
    try:
        stars = int(one(data, "stars", max_len=1))
    except ValueError:
        raise BadInput("choose 1 to 5 stars") from None
    if not 1 <= stars <= 5:
        raise BadInput("choose 1 to 5 stars")
    comment = one(data, "comment", max_len=500, required=False)
    await p.deps.tickets.rate(str(t["_id"]), stars, comment, by=who.actor, at=time.time())
    await p.audit.record(who, "ticket.rate", str(t.get("number", "")), before=t.get("rating"), after={"stars": stars, "comment": comment})
    raise web.HTTPSeeOther(f"/portal/tickets/{t['_id']}")


ROUTES = (
    PortalRoute("GET", "/tickets", tickets, Module.TICKETS, "tickets"),
    PortalRoute("GET", "/tickets/{tid}", ticket, Module.TICKETS, "ticket"),
    PortalRoute("GET", "/tickets/{tid}/qr.png", qr, Module.TICKETS, "ticket_qr"),
    PortalRoute("POST", "/tickets/{tid}/rating", rate, Module.TICKETS, "ticket_rate"),
)
