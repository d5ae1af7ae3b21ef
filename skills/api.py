"""The business skills' JSON API for the console and integrations, on ``/api``.

Scopes (``bot.apikeys.SCOPES``, checked by :mod:`bot.api`'s middleware): ``repair:read``
/ ``repair:write``, ``renewal:read`` / ``renewal:write``, ``reviews:read`` /
``reviews:write``. Marketplace webhooks are signed per marketplace
(``connectors.<name>.webhook_secret``) instead of carrying an API key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web

from bot.api import authorize, dumps, json_body, json_error, public, requires
from skills.renewal.rules import RuleError
from skills.repair_dispatch.cases import resolution_from_json
from skills.repair_dispatch.tickets import Ticket
from skills.services import SKILL_SERVICES, SkillServices

log = logging.getLogger(__name__)


def services(request: web.Request) -> SkillServices:
    return request.config_dict[SKILL_SERVICES]


def _public(ticket: Ticket) -> dict[str, Any]:
    out = {k: v for k, v in ticket.items() if k not in ("qr_path",)}
    out["id"] = out.pop("_id")
    return out


# -- repair ------------------------------------------------------------------------------
@requires("repair:read")
async def list_tickets(request: web.Request) -> web.StreamResponse:
    """Tickets, newest first; ``?attention=1`` lists those an agent should look at."""
    svc = services(request)
    limit = min(200, int(request.query.get("limit", "50")))
    found = await svc.tickets.listing(
        attention=request.query.get("attention") in ("1", "true"), status=request.query.get("status", ""), limit=limit
    )
    docs = [_public(d) for d in found]
    return web.json_response({"tickets": docs}, dumps=dumps)


@requires("repair:write")
async def set_ticket_status(request: web.Request) -> web.StreamResponse:
    """Record a status change (``{"status": "on_the_way" | "done", "by": "..."}``); the customer is notified.

    ``done`` may carry the engineer's ``resolution`` (``{cause, parts, self_fixed,
    self_check: {zh, en}}``): the ticket then becomes a case of the repair case library."""
    svc = services(request)
    data = await json_body(request)
    ref = request.match_info["ticket"]
    found = await svc.tickets.find(ref)
    if found is None:
        return json_error(404, "not_found", f"no ticket {ref!r}")
    try:
        resolution = resolution_from_json(data["resolution"]) if data.get("resolution") is not None else None
    except ValueError as exc:
        return json_error(400, "bad_resolution", str(exc), field="resolution")
    try:
        ticket = await svc.repair.set_status(
            str(found["_id"]), str(data.get("status", "")), by=str(data.get("by") or "api"), resolution=resolution
        )
    except ValueError as exc:
        return json_error(400, "bad_status", str(exc), field="status")
    assert ticket is not None
    return web.json_response({"id": ticket["_id"], "status": ticket["status"]})


async def verify_engineer(request: web.Request) -> web.StreamResponse:
    """What the QR code opens: the engineer's credentials, if the link is genuine."""
    svc = services(request)
    e, t, sig = (request.query.get(k, "") for k in ("e", "t", "sig"))
    if not (e and t and sig) or not await svc.repair.check_signature(t, e, sig):
        return json_error(403, "invalid_link", "this verification link is not genuine")
    eng = await svc.catalog.engineers.find_one({"_id": e})
    ticket = await svc.tickets.get(t)
    if eng is None or ticket is None or (ticket.get("engineer") or {}).get("id") != e:
        return json_error(404, "not_assigned", "this engineer is not assigned to this ticket")
    return web.json_response(
        {"ticket": ticket["number"], "status": ticket.get("status"), "engineer": {k: eng.get(k) for k in ("name", "qualification", "cert_no", "rating")}},
        dumps=dumps,
    )


# -- renewal ---------------------------------------------------------------------------
@requires("renewal:read")
async def list_rules(request: web.Request) -> web.StreamResponse:
    """The renewal rules."""
    rules = await services(request).renewals.list_rules()
    return web.json_response({"rules": [{"id": r.pop("_id"), **r} for r in rules]}, dumps=dumps)


@requires("renewal:write")
async def put_rule(request: web.Request) -> web.StreamResponse:
    """Create or replace a rule: ``{"name", "when", "then", "enabled"}`` (see skills.renewal.rules)."""
    try:
        rule = await services(request).renewals.put_rule(request.match_info["rule"], await json_body(request))
    except RuleError as exc:
        return json_error(400, "invalid_rule", str(exc), field=exc.field)
    return web.json_response({"id": rule.pop("_id"), **rule}, dumps=dumps)


@requires("renewal:write")
async def delete_rule(request: web.Request) -> web.StreamResponse:
    """Delete a rule."""
    if not await services(request).renewals.delete_rule(request.match_info["rule"]):
        return json_error(404, "not_found", "no such rule")
    return web.json_response({"deleted": request.match_info["rule"]})


@requires("renewal:write")
async def run_scan(request: web.Request) -> web.StreamResponse:
    """Run the reminder scan now (idempotent: nothing is sent twice)."""
    report = await services(request).renewals.scan()
    return web.json_response(report.__dict__)


# -- reviews ---------------------------------------------------------------------------
@public
async def review_webhook(request: web.Request) -> web.StreamResponse:
    """A marketplace pushes reviews: ``{"reviews": [...]}`` in its own item shape.

    Verified first: ``X-Kefu-Signature: sha256=<hex HMAC of the body>`` with the
    connector's ``webhook_secret``, or, without a secret, an API key with ``reviews:write``.
    Stored and acknowledged; the reviews job answers them off the request.
    """
    svc = services(request)
    name = request.match_info["marketplace"]
    market = svc.reviews.marketplace(name)
    if market is None:
        # Authenticated first, and refused the way a configured one would refuse, so a
        # stranger cannot tell which connectors are set up.
        if "X-Kefu-Signature" in request.headers:
            return json_error(401, "bad_signature", "signature does not match")
        await authorize(request, "reviews:write")
        return json_error(404, "unknown_marketplace", f"no connector for {name!r}")
    raw = await request.read()
    secret = market.settings.option("webhook_secret")
    if secret:
        given = request.headers.get("X-Kefu-Signature", "").removeprefix("sha256=").encode("utf-8", "replace")
        want = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(given, want):
            log.warning("review webhook %s: bad signature from %s", name, request.remote)
            return json_error(401, "bad_signature", "signature does not match")
    else:
        await authorize(request, "reviews:write")
    try:
        data = json.loads(raw)
        items = data["reviews"] if isinstance(data, dict) and "reviews" in data else [data]
        reviews = [market.parse(i) for i in items]
    except Exception as exc:  # verified sender, bad payload: say so, change nothing
        return json_error(400, "bad_payload", str(exc))
    stored = await svc.reviews.ingest_many(reviews, via="webhook")
    answer: dict[str, Any] = {"accepted": stored.count("new"), "duplicates": stored.count("duplicate")}
    if "failed" in stored:
        answer["failed"] = [r.review_id for r, st in zip(reviews, stored) if st == "failed"]
    return web.json_response(answer)


@requires("reviews:read")
async def carrier_performance(request: web.Request) -> web.StreamResponse:
    """Per carrier: breach rate, average delay in days, share resolved within 48 h."""
    return web.json_response({"carriers": await services(request).reviews.carrier_performance()})


@requires("reviews:read")
async def list_reviews(request: web.Request) -> web.StreamResponse:
    """Reviews, newest first; ``?status=pending`` or ``?overdue=1`` for the work list."""
    query: dict[str, Any] = {}
    if request.query.get("status"):
        query["status"] = request.query["status"]
    if request.query.get("overdue") in ("1", "true"):
        query["overdue"] = True
    limit = min(200, int(request.query.get("limit", "50")))
    docs = [{"id": d.pop("_id"), **d} async for d in services(request).reviews.reviews.find(query).sort("received_at", -1).limit(limit)]
    return web.json_response({"reviews": docs}, dumps=dumps)


def routes() -> list[web.RouteDef]:
    """The skills' endpoints, relative to ``/api``."""
    return [
        web.get("/renewal/rules", list_rules),
        web.put("/renewal/rules/{rule}", put_rule),
        web.delete("/renewal/rules/{rule}", delete_rule),
        web.post("/renewal/scan", run_scan),
        web.post("/reviews/webhook/{marketplace}", review_webhook),
        web.get("/reviews/carriers", carrier_performance),
        web.get("/reviews", list_reviews),
        web.get("/repair/tickets", list_tickets),
        web.post("/repair/tickets/{ticket}/status", set_ticket_status),
    ]


def page_routes() -> list[web.RouteDef]:
    """Routes outside ``/api``: what an engineer's QR code opens."""
    return [web.get("/verify/engineer", verify_engineer)]
