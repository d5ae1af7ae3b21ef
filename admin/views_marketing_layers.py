"""The marketers' layers: the global default and each segment, edited field by field,
with how many customers a change decides shown before it is saved."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from admin.marketing import done, log_refused, prefs, refusing, version_field
from admin.roles import MARKETING
from admin.state import ConsoleRoute, console, current_user
from bot.errors import KefuError
from preferences.model import LANGUAGES, Detail, Frequency, Topic, validate_layer
from preferences.provenance import diff
from preferences.store import DEFAULT_LAYER
from webui.errors import BadInput
from webui.forms import fields

TOPIC_FIELDS = ("frequency", "detail", "opted_out", "at", "weekday")


def layer_name(raw: str) -> str:
    if raw == DEFAULT_LAYER:
        return raw
    name = raw[len("segment:"):] if raw.startswith("segment:") else ""
    if not name or len(name) > 40 or not name.replace("_", "").replace("-", "").isalnum():
        raise BadInput("a layer is 'default' or 'segment:<name>' (letters, digits, - and _)")
    return raw


def layer_from_form(data: dict[str, str]) -> dict[str, Any]:
    """A layer from the editor's fields; an empty field inherits (is not set here)."""
    layer: dict[str, Any] = {}
    channels = [c.strip() for c in data.get("channels", "").replace("，", ",").split(",") if c.strip()]
    if channels:
        layer["channels"] = channels
    for key in ("language", "timezone"):
        if data.get(key, "").strip():
            layer[key] = data[key].strip()
    quiet = data.get("quiet_hours", "inherit")
    if quiet == "none":
        layer["quiet_hours"] = None
    elif quiet == "set":
        layer["quiet_hours"] = {"start": data.get("quiet_start", ""), "end": data.get("quiet_end", "")}
    topics: dict[str, Any] = {}
    for t in Topic:
        tp: dict[str, Any] = {}
        for f in TOPIC_FIELDS:
            raw = data.get(f"topics.{t.value}.{f}", "").strip()
            if not raw:
                continue
            if f == "opted_out":
                tp[f] = raw == "true"
            elif f == "weekday":
                try:
                    tp[f] = int(raw)
                except ValueError:
                    raise BadInput(f"topics.{t.value}.weekday: 0..6") from None
            else:
                tp[f] = raw
        if tp:
            topics[t.value] = tp
    if topics:
        layer["topics"] = topics
    return layer


async def _layers(request: web.Request) -> list[dict[str, Any]]:
    docs = {str(d["_id"]): d for d in await prefs(request).prefs.list_layers()}
    names = [DEFAULT_LAYER] + sorted(n for n in docs if n.startswith("segment:"))
    return [{"name": n, "settings": (docs.get(n) or {}).get("settings") or {}, "version": (docs.get(n) or {}).get("version", 0)} for n in names]


async def _page(request: web.Request, selected: str, *, draft: dict[str, Any] | None = None, preview: dict[str, Any] | None = None,
                error: str = "", status: int = 200) -> web.StreamResponse:
    c = console(request)
    layers = await _layers(request)
    current = next((layer for layer in layers if layer["name"] == selected), {"name": selected, "settings": {}, "version": 0})
    return await c.pages.render(
        request, "marketing/layers.html", status=status, layers=layers, layer=current,
        form=draft if draft is not None else current["settings"], preview=preview, error=error,
        topics=[t.value for t in Topic], frequencies=[f.value for f in Frequency], details=[d.value for d in Detail],
        languages=LANGUAGES, history=await prefs(request).prefs.list_history(selected, 20),
    )


async def layers(request: web.Request) -> web.StreamResponse:
    return await _page(request, layer_name(request.query.get("layer", DEFAULT_LAYER)))


async def _preview(request: web.Request, name: str, layer: dict[str, Any]) -> dict[str, Any]:
    svc = prefs(request).prefs
    old = await svc.get_layer(name)
    clean = validate_layer(layer, svc.book)
    changes = diff(old, clean)
    affected = await svc.count_decided_by(name, [ch.path for ch in changes]) if changes else 0
    return {"changes": changes, "affected": affected, "layer": clean}


@refusing
async def preview_json(request: web.Request) -> web.StreamResponse:
    name = layer_name(request.match_info["layer"])
    p = await _preview(request, name, layer_from_form(await fields(request)))
    return web.json_response({"affected": p["affected"], "changes": [{"path": ch.path, "old": ch.old, "new": ch.new} for ch in p["changes"]]})


@refusing
async def save(request: web.Request) -> web.StreamResponse:
    c = console(request)
    name = layer_name(request.match_info["layer"])
    data = await fields(request)
    draft = layer_from_form(data)
    try:
        p = await _preview(request, name, draft)
    except KefuError as exc:  # shown beside the form; nothing saved
        log_refused(request, exc.code)
        return await _page(request, name, draft=draft, error=exc.message, status=400)
    if data.get("action") != "save":
        return await _page(request, name, draft=p["layer"], preview=p)
    svc = prefs(request).prefs
    before = await svc.get_layer(name)
    actor = current_user(request).name
    version = await svc.put_layer(name, p["layer"], actor=f"console:{actor}", via="console")
    await c.audit.record(actor, "preferences.layer", name, before=before, after={"settings": p["layer"], "version": version, "affected": p["affected"]})
    return await done(request, f"/admin/marketing/layers?layer={name}", "layer_saved", version=version, affected=p["affected"])


@refusing
async def rollback(request: web.Request) -> web.StreamResponse:
    c = console(request)
    name = layer_name(request.match_info["layer"])
    version = await version_field(request)
    svc = prefs(request).prefs
    before = await svc.get_layer(name)
    actor = current_user(request).name
    new = await svc.rollback(name, version, actor=f"console:{actor}", via="console")
    await c.audit.record(actor, "preferences.layer_rollback", name, before=before, after={"settings": await svc.get_layer(name), "version": new, "to": version})
    raise web.HTTPSeeOther(f"/admin/marketing/layers?layer={name}")


ROUTES = (
    ConsoleRoute("GET", "/marketing/layers", layers, MARKETING, "mk_layers"),
    ConsoleRoute("POST", "/marketing/layers/{layer}/preview", preview_json, MARKETING, "mk_layer_preview"),
    ConsoleRoute("POST", "/marketing/layers/{layer}", save, MARKETING, "mk_layer_save"),
    ConsoleRoute("POST", "/marketing/layers/{layer}/rollback", rollback, MARKETING, "mk_layer_rollback"),
)
