"""Renewal rules: edit with validation as you type, a dry run over today's contracts,
enable/disable, and every version kept (restorable)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from admin.marketing import done, json_field, log_refused, refusing, skills, version_field
from admin.roles import MARKETING
from admin.state import ConsoleRoute, console, current_user
from skills.renewal.rules import RuleError, validate_rule
from webui.errors import BadInput, NotFound
from webui.forms import fields, one

RULE_ID_MAX = 40


def _rule_id(raw: str) -> str:
    if not raw or len(raw) > RULE_ID_MAX or not raw.replace("_", "").replace("-", "").isalnum():
        raise BadInput("a rule id has letters, digits, - and _ (at most 40)")
    return raw


def _body(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: rule[k] for k in ("name", "when", "then", "enabled") if k in rule}


def rule_from_form(data: dict[str, str]) -> dict[str, Any]:
    return {
        "name": one(data, "name", max_len=120, required=False),
        "when": json_field(data.get("when", ""), "when"),
        "then": json_field(data.get("then", ""), "then"),
        "enabled": data.get("enabled") in ("on", "true"),
    }


async def rules(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return await c.pages.render(request, "marketing/rules.html", rules=await skills(request).renewals.list_rules())


async def _editor(request: web.Request, rule_id: str, *, draft: dict[str, str] | None = None, error: str = "", field: str = "",
                  hits: list[dict[str, Any]] | None = None, status: int = 200) -> web.StreamResponse:
    c = console(request)
    renewals = skills(request).renewals
    stored = await renewals.get_rule(rule_id)
    if draft is None:
        body = _body(stored) if stored is not None else {"name": "", "when": {"all": [{"field": "amount", "op": ">", "value": 100000}]},
                                                          "then": [{"action": "sales_todo"}], "enabled": True}
        draft = {"name": str(body["name"]), "when": json.dumps(body["when"], ensure_ascii=False, indent=2),
                 "then": json.dumps(body["then"], ensure_ascii=False, indent=2), "enabled": "on" if body.get("enabled", True) else ""}
    return await c.pages.render(
        request, "marketing/rule_edit.html", status=status, rule_id=rule_id, stored=stored, draft=draft, error=error, field=field,
        hits=hits, history=await renewals.rule_history(rule_id), offsets=renewals.settings.offsets,
    )


async def edit(request: web.Request) -> web.StreamResponse:
    if request.match_info["rule"] == "new":  # the list's "add" form names the new rule's id
        raise web.HTTPSeeOther(f"/admin/marketing/rules/{_rule_id(request.query.get('id', ''))}")
    return await _editor(request, _rule_id(request.match_info["rule"]))


@refusing
async def validate(request: web.Request) -> web.StreamResponse:
    """Validation as you type: ``{"ok": true}`` or the message and the place in the rule."""
    data = await fields(request)
    try:
        validate_rule(rule_from_form(data))
    except RuleError as exc:
        return web.json_response({"ok": False, "error": str(exc), "field": exc.field})
    except BadInput as exc:
        return web.json_response({"ok": False, "error": exc.message, "field": ""})
    return web.json_response({"ok": True})


@refusing
async def save(request: web.Request) -> web.StreamResponse:
    c = console(request)
    rule_id = _rule_id(request.match_info["rule"])
    data = await fields(request)
    renewals = skills(request).renewals
    try:
        rule = rule_from_form(data)
        if data.get("action") == "dry_run":
            hits = await renewals.rule_hits(rule)
            return await _editor(request, rule_id, draft=data, hits=hits)
        before = await renewals.get_rule(rule_id)
        actor = current_user(request).name
        stored = await renewals.put_rule(rule_id, rule, actor=actor)
    except RuleError as exc:
        log_refused(request, f"invalid_rule:{exc.field}")
        return await _editor(request, rule_id, draft=data, error=str(exc), field=exc.field, status=400)
    except BadInput as exc:
        log_refused(request, exc.code)
        return await _editor(request, rule_id, draft=data, error=exc.message, status=400)
    await c.audit.record(actor, "renewal.rule", rule_id, before=_body(before) if before else None, after={**_body(stored), "version": stored["version"]})
    return await done(request, f"/admin/marketing/rules/{rule_id}", "rule_saved", version=stored["version"])


@refusing
async def toggle(request: web.Request) -> web.StreamResponse:
    c = console(request)
    rule_id = _rule_id(request.match_info["rule"])
    renewals = skills(request).renewals
    stored = await renewals.get_rule(rule_id)
    if stored is None:
        raise NotFound(c.pages.text(request, "no_such_rule"))
    enabled = (await fields(request)).get("enabled") == "true"
    actor = current_user(request).name
    after = await renewals.put_rule(rule_id, {**_body(stored), "enabled": enabled}, actor=actor)
    await c.audit.record(actor, "renewal.rule_enabled", rule_id, before={"enabled": stored.get("enabled", True)}, after={"enabled": enabled, "version": after["version"]})
    raise web.HTTPSeeOther("/admin/marketing/rules")


@refusing
async def restore(request: web.Request) -> web.StreamResponse:
    c = console(request)
    rule_id = _rule_id(request.match_info["rule"])
    renewals = skills(request).renewals
    version = await version_field(request)
    old = await renewals.rule_version(rule_id, version)
    if old is None:
        raise NotFound(c.pages.text(request, "no_such_version"))
    before = await renewals.get_rule(rule_id)
    actor = current_user(request).name
    after = await renewals.put_rule(rule_id, old, actor=actor)
    await c.audit.record(actor, "renewal.rule_restore", rule_id, before=_body(before) if before else None, after={**_body(after), "version": after["version"], "from": version})
    raise web.HTTPSeeOther(f"/admin/marketing/rules/{rule_id}")


ROUTES = (
    ConsoleRoute("GET", "/marketing/rules", rules, MARKETING, "mk_rules"),
    ConsoleRoute("POST", "/marketing/rules/validate", validate, MARKETING, "mk_rule_validate"),
    ConsoleRoute("GET", "/marketing/rules/{rule}", edit, MARKETING, "mk_rule"),
    ConsoleRoute("POST", "/marketing/rules/{rule}", save, MARKETING, "mk_rule_save"),
    ConsoleRoute("POST", "/marketing/rules/{rule}/enabled", toggle, MARKETING, "mk_rule_enabled"),
    ConsoleRoute("POST", "/marketing/rules/{rule}/restore", restore, MARKETING, "mk_rule_restore"),
)
