"""My contracts: end dates, the renewal quote, renewal requests and their status."""

from __future__ import annotations

from aiohttp import web

from portal.access import render, take_flash
from portal.members import Module
from portal.state import PortalRoute, portal, viewer
from webui.errors import NotFound


async def _portfolio(request: web.Request) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    p = portal(request)
    who = viewer(request)
    ids, _ = await p.deps.rights.identities(who.customer)
    return await p.deps.renewals.portfolio(who.customer, sorted(ids))


async def contracts(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    rows, requests = await _portfolio(request)
    quotes = {str(c["_id"]): p.deps.renewals.quote(c) for c in rows}
    asked = {str(r.get("contract")): r for r in requests}
    return render(request, "contracts.html", contracts=rows, quotes=quotes, asked=asked, requests=requests, flash=await take_flash(request))


async def renew(request: web.Request) -> web.StreamResponse:
    """POST /portal/contracts/{cid}/renew: a renewal request (one per contract term)."""
    p = portal(request)
    who = viewer(request)
    rows, _ = await _portfolio(request)
    contract = next((c for c in rows if str(c["_id"]) == request.match_info["cid"]), None)
    if contract is None:
        raise NotFound("no such contract")
    opportunity, created = await p.deps.renewals.open_opportunity(contract, via="portal", conversation="")
    if created:
        await p.audit.record(who, "contract.renewal_request", str(contract["_id"]), after={"quote": opportunity.get("quote")})
    raise web.HTTPSeeOther("/portal/contracts")


ROUTES = (
    PortalRoute("GET", "/contracts", contracts, Module.CONTRACTS, "contracts"),
    PortalRoute("POST", "/contracts/{cid}/renew", renew, Module.CONTRACTS, "contract_renew"),
)
