"""How you hear from us: per topic frequency and detail, channel order, quiet hours,
language; every change with who made it, and rollback of the customer's own changes.

Changes go through the preference store, so every later notification obeys them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from portal.access import render, take_flash
from portal.members import Module
from portal.state import PortalRoute, portal, viewer
from preferences.model import Detail, Frequency, Topic
from preferences.store import DEFAULT_LAYER, segment_layer
from webui.errors import NotFound
from webui.forms import fields, one

CUSTOMER_VIA = ("chat", "portal")  # changes the customer's side made, which they may roll back


async def notify_page(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    prefs = p.deps.prefs
    doc = await prefs.get(who.customer)
    current = await prefs.effective_layer(who.customer)
    subjects = [who.customer, DEFAULT_LAYER, *(segment_layer(str(s)) for s in doc.get("segments") or ())]
    histories = await asyncio.gather(*(prefs.list_history(s, limit=30) for s in subjects))
    history = sorted((h for hs in histories for h in hs), key=lambda h: h.get("at", 0), reverse=True)[:40]
    for h in history:
        h["changed"] = changed_parts(h.get("old") or {}, h.get("new") or {})
    channels = list(current.get("channels") or [])
    reachable = [c for c in channels if c in (current.get("addresses") or {})]
    return render(
        request, "notify.html", settings=current, topics=[t.value for t in Topic], frequencies=[f.value for f in Frequency],
        details=[d.value for d in Detail], channels=channels, reachable=reachable, history=history,
        customer_via=CUSTOMER_VIA, flash=await take_flash(request),
        channel_names={name: dict(cls.display_name) for name, cls in prefs.book.classes.items()},
    )


def changed_parts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a change touched, by name ("topics.repair", "quiet_hours"), never the values:
    addresses are the customer's identifiers and colleagues may read this page."""
    parts: list[str] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "topics" and isinstance(before or {}, dict) and isinstance(after or {}, dict):
            b, a = before or {}, after or {}
            parts += [f"topics.{t}" for t in sorted(set(b) | set(a)) if b.get(t) != a.get(t)]
        else:
            parts.append(key)
    return parts


def patch_of(data: dict[str, str], channels: list[str]) -> dict[str, Any]:
    """The settings change a submitted form asks for."""
    topics: dict[str, Any] = {}
    for t in Topic:
        entry: dict[str, Any] = {}
        for name in ("frequency", "detail"):
            value = data.get(f"{t.value}.{name}", "")
            if value:
                entry[name] = value
        if f"{t.value}.present" in data:
            entry["opted_out"] = f"{t.value}.opted_out" in data
        if entry:
            topics[t.value] = entry
    patch: dict[str, Any] = {"topics": topics} if topics else {}
    order = [c.strip() for c in data.get("channel_order", "").split(",") if c.strip()]
    if order:
        patch["channels"] = order + [c for c in channels if c not in order]
    if "quiet_start" in data:
        start, end = data.get("quiet_start", "").strip(), data.get("quiet_end", "").strip()
        patch["quiet_hours"] = {"start": start, "end": end} if start and end else None
    if data.get("language"):
        patch["language"] = data["language"]
    return patch


async def save(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    data = await fields(request)
    for key in data:
        one(data, key, max_len=200, required=False)
    before = await p.deps.prefs.effective_layer(who.customer)
    patch = only_changes(before, patch_of(data, list(before.get("channels") or [])))
    if not patch:
        raise web.HTTPSeeOther("/portal/notify")  # saved as it was: no new version
    version = await p.deps.prefs.change(who.customer, patch, actor=who.actor, via="portal")
    await p.audit.record(who, "preferences.change", f"v{version}", before=_only(before, patch), after=patch)
    raise web.HTTPSeeOther("/portal/notify")


def only_changes(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The parts of a submitted form that differ from the settings in effect: the form
    posts every field, the history should show what the customer changed."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key == "topics":
            topics = {}
            for topic, fields_ in value.items():
                now = (current.get("topics") or {}).get(topic, {})
                changed = {f: v for f, v in fields_.items() if now.get(f) != v}
                if changed:
                    topics[topic] = changed
            if topics:
                out["topics"] = topics
        elif current.get(key) != value:
            out[key] = value
    return out


def _only(settings: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The part of ``settings`` a patch touches (what the audit keeps as 'before')."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key == "topics":
            out[key] = {t: {f: (settings.get("topics") or {}).get(t, {}).get(f) for f in v} for t, v in value.items()}
        else:
            out[key] = settings.get(key)
    return out


async def rollback(request: web.Request) -> web.StreamResponse:
    """POST /portal/notify/undo/{version}: undo one of the customer's own changes, by
    restoring the settings as they were just before it (recorded as a new version)."""
    p = portal(request)
    who = viewer(request)
    try:
        version = int(request.match_info["version"])
    except ValueError:
        raise NotFound("no such change") from None
    history = {h["version"]: h for h in await p.deps.prefs.list_history(who.customer, limit=200)}
    change = history.get(version)
    if change is None or change.get("via") not in CUSTOMER_VIA or version < 2:
        raise NotFound("no such change of yours")
    new_version = await p.deps.prefs.rollback(who.customer, version - 1, actor=who.actor, via="portal")
    await p.audit.record(who, "preferences.rollback", f"v{version}", before=change.get("new"), after=change.get("old"))
    raise web.HTTPSeeOther(f"/portal/notify?v={new_version}")


ROUTES = (
    PortalRoute("GET", "/notify", notify_page, Module.NOTIFY, "notify"),
    PortalRoute("POST", "/notify", save, Module.NOTIFY, "notify_save"),
    PortalRoute("POST", "/notify/undo/{version}", rollback, Module.NOTIFY, "notify_undo"),
)
