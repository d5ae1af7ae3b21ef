"""Notification templates: every one per message, language and channel; an editor whose
preview is the real renderer's output; refused when broken; versions, diffs, rollback."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin.marketing import done, log_refused, prefs, refusing, version_field
from admin.roles import MARKETING
from admin.state import ConsoleRoute, console, current_user
from preferences.model import LANGUAGES
from preferences.template_versions import NOTIFICATION_TEMPLATES, TemplateName, TemplateProblem, check, unified_diff
from webui.errors import BadInput
from webui.forms import fields


def _name(request: web.Request, key: str) -> TemplateName:
    return TemplateName.parse(key, tuple(prefs(request).prefs.book.classes))


async def templates(request: web.Request) -> web.StreamResponse:
    c = console(request)
    svc = prefs(request)
    edited = await svc.templates.edited()
    channels = list(svc.prefs.book.classes)
    rows: list[dict[str, Any]] = []
    for message in NOTIFICATION_TEMPLATES:
        for language in LANGUAGES:
            for channel in ["", *channels]:
                name = TemplateName(language, message, channel)
                used = svc.renderer.template(message, language, channel).name or ""
                rows.append({"key": name.key, "message": message, "language": language, "channel": channel, "used": used,
                             "own": used == name.key, "version": int(edited[name.key]["version"]) if name.key in edited else 0})
    return await c.pages.render(request, "marketing/templates.html", rows=rows)


async def _editor(request: web.Request, key: str, *, source: str | None = None, error: str = "", line: int | None = None,
                  status: int = 200) -> web.StreamResponse:
    c = console(request)
    svc = prefs(request)
    name = _name(request, key)
    text = source if source is not None else svc.templates.source(key) or svc.templates.source(TemplateName(name.language, name.message, "").key)
    sample: dict[str, Any] | None = None
    nid = request.query.get("notification", "")[:64]
    if nid:
        sample = await svc.activity.data_of(nid)
    previews: dict[str, str] = {}
    if not error:
        try:
            previews = check(svc.renderer, name, text, sample)
        except TemplateProblem as exc:
            error, line = exc.message, exc.line
    recent = await svc.activity.recent(name.message)
    return await c.pages.render(
        request, "marketing/template_edit.html", status=status, key=key, name=name, source=text, error=error, line=line,
        previews=previews, versions=await svc.templates.versions(key), recent=recent, notification=nid,
    )


@refusing
async def edit(request: web.Request) -> web.StreamResponse:
    return await _editor(request, request.query.get("key", "")[:128])


@refusing
async def preview(request: web.Request) -> web.StreamResponse:
    """The live preview as JSON: previews per detail level, or the error and its line."""
    data = await fields(request)
    svc = prefs(request)
    name = _name(request, data.get("key", "")[:128])
    try:
        return web.json_response({"previews": check(svc.renderer, name, data.get("source", ""))})
    except TemplateProblem as exc:
        return web.json_response({"error": exc.message, "line": exc.line})


@refusing
async def save(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    svc = prefs(request)
    key = data.get("key", "")[:128]
    name = _name(request, key)
    source = data.get("source", "").replace("\r\n", "\n")
    before = svc.templates.source(key)
    actor = current_user(request).name
    try:
        version = await svc.templates.save(name, source, actor=actor)
    except TemplateProblem as exc:  # shown inline with the text as typed; nothing stored
        log_refused(request, exc.code)
        return await _editor(request, key, source=source, error=exc.message, line=exc.line, status=400)
    await c.audit.record(actor, "template.save", key, before=before, after={"source": source, "version": version})
    return await done(request, f"/admin/marketing/templates/edit?key={key}", "template_saved", version=version)


@refusing
async def rollback(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    svc = prefs(request)
    key = data.get("key", "")[:128]
    version = await version_field(request)
    before = svc.templates.source(key)
    actor = current_user(request).name
    new = await svc.templates.rollback(_name(request, key), version, actor=actor)
    await c.audit.record(actor, "template.rollback", key, before=before, after={"source": svc.templates.source(key), "version": new, "to": version})
    return await done(request, f"/admin/marketing/templates/edit?key={key}", "template_restored", version=version)


@refusing
async def compare(request: web.Request) -> web.StreamResponse:
    c = console(request)
    svc = prefs(request)
    key = request.query.get("key", "")[:128]
    _name(request, key)
    try:
        a, b = int(request.query.get("a", "0")), int(request.query.get("b", "0"))
    except ValueError:
        raise BadInput("versions must be numbers") from None
    old, new = await svc.templates.version_source(key, a), await svc.templates.version_source(key, b)
    if old is None or new is None:
        raise BadInput(c.pages.text(request, "no_such_version"))
    lines = unified_diff(old, new, f"v{a}", f"v{b}")
    return await c.pages.render(request, "marketing/template_diff.html", key=key, a=a, b=b, lines=lines)


ROUTES = (
    ConsoleRoute("GET", "/marketing/templates", templates, MARKETING, "mk_templates"),
    ConsoleRoute("GET", "/marketing/templates/edit", edit, MARKETING, "mk_template_edit"),
    ConsoleRoute("POST", "/marketing/templates/preview", preview, MARKETING, "mk_template_preview"),
    ConsoleRoute("POST", "/marketing/templates/save", save, MARKETING, "mk_template_save"),
    ConsoleRoute("POST", "/marketing/templates/rollback", rollback, MARKETING, "mk_template_rollback"),
    ConsoleRoute("GET", "/marketing/templates/diff", compare, MARKETING, "mk_template_diff"),
)
