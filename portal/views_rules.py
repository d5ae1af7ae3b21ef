"""My rules: conditions on notifications to the customer's side ("a renewal quote over
CNY 1,000,000 also goes to our CTO"), each with a preview over recent notifications."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from portal.access import render, take_flash
from portal.members import Module
from portal.state import PortalRoute, portal, viewer
from preferences.errors import InvalidPreference
from preferences.model import Topic
from preferences.rules import CONDITIONS, Rule, matches, validate
from webui.errors import NotFound
from webui.forms import fields, one

PREVIEW_OVER = 100  # recent notifications a preview looks at
DRAFT = ("topic", "condition", "value", "email")


async def rules_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, {k: "" for k in DRAFT}, preview=False)


async def preview(request: web.Request) -> web.StreamResponse:
    """POST /portal/rules/preview: which recent notifications a rule not yet saved would match."""
    data = await fields(request)
    return await _page(request, {k: one(data, k, max_len=200, required=False) for k in DRAFT}, preview=True)


async def _page(request: web.Request, draft: dict[str, str], *, preview: bool) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    rules, recent = await asyncio.gather(p.deps.rules.of_customer(who.customer), p.deps.engine.recent(who.customer, limit=PREVIEW_OVER))
    matched: list[dict[str, Any]] | None = None
    problem = ""
    if preview:
        try:
            topic, condition, value, email = validate(draft["topic"], draft["condition"], draft["value"], draft["email"])
            trial = Rule("preview", who.customer, topic, condition, value, email, who.actor, 0.0)
            matched = [n for n in recent if matches(trial, str(n["topic"]), n.get("data") or {})]
        except InvalidPreference as exc:
            problem = exc.message
    hits = {r.id: sum(1 for n in recent if matches(r, str(n["topic"]), n.get("data") or {})) for r in rules}
    return render(
        request, "rules.html", rules=rules, hits=hits, topics=[t.value for t in Topic], conditions=CONDITIONS,
        draft=draft, preview=matched, problem=problem, looked_at=len(recent), flash=await take_flash(request),
    )


async def add(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    data = await fields(request)
    values = {k: one(data, k, max_len=200) for k in DRAFT}
    rule = await p.deps.rules.add(who.customer, **values, created_by=who.actor)
    await p.audit.record(who, "rule.add", rule.id, after={k: v for k, v in rule.as_doc().items() if k not in ("_id", "customer")})
    raise web.HTTPSeeOther("/portal/rules")


async def remove(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    rule = await p.deps.rules.remove(who.customer, request.match_info["rid"])
    if rule is None:
        raise NotFound("no such rule")
    await p.audit.record(who, "rule.remove", rule.id, before={k: v for k, v in rule.as_doc().items() if k not in ("_id", "customer")})
    raise web.HTTPSeeOther("/portal/rules")


ROUTES = (
    PortalRoute("GET", "/rules", rules_page, Module.RULES, "rules"),
    PortalRoute("POST", "/rules", add, Module.RULES, "rule_add"),
    PortalRoute("POST", "/rules/preview", preview, Module.RULES, "rule_preview"),
    PortalRoute("POST", "/rules/{rid}/delete", remove, Module.RULES, "rule_remove"),
)
