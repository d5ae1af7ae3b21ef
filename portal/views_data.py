"""My data: what we hold by category, each voice note's processing (model, storage,
retention) with deletion of its audio, an encrypted export, and erasure."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from portal.access import clear_cookie, render, take_flash
from portal.members import Module
from portal.state import PortalRoute, portal, viewer
from portal.views_summary import summary_context
from preferences.data_rights import EXPORT_FORMATS
from webui.errors import BadInput, NotFound
from webui.forms import fields, one
from webui.sessions import SESSION

SHOWN_ONCE = "kefu:portal:export-password:"
COUNTS = "kefu:portal:counts:"
# Counting a long history is a scan on the embedded store (10,000 notifications: about
# 0.7 s); the page reuses a count this recent and says when it was taken.
COUNTS_TTL_S = 120


async def _counts(request: web.Request, customer: str) -> tuple[dict[str, int], float]:
    p = portal(request)
    raw = await p.deps.redis.get(COUNTS + customer)
    if raw is not None:
        cached = json.loads(raw)
        return dict(cached["counts"]), float(cached["at"])
    counts, at = await p.deps.rights.counts(customer), time.time()
    await p.deps.redis.set(COUNTS + customer, json.dumps({"counts": counts, "at": at}), ex=COUNTS_TTL_S)
    return counts, at


async def _recount(request: web.Request, customer: str) -> None:
    await portal(request).deps.redis.delete(COUNTS + customer)


async def data_page(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    rights = p.deps.rights
    (counts, counted_at), voice, exports, audit = await asyncio.gather(
        _counts(request, who.customer), rights.voice_notes(who.customer), p.exports.of_customer(who.customer),
        p.audit.recent(who.customer, limit=30),
    )
    made = request.query.get("export", "")[:32]
    password = ""
    if made:
        raw = await p.deps.redis.getdel(SHOWN_ONCE + who.customer + ":" + made)
        password = "" if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))
    return render(
        request, "data.html", counts=counts, counted_at=counted_at, voice=voice, exports=exports, made=made, password=password,
        formats=EXPORT_FORMATS, retention_days=rights.retention_days, erase_code=request.query.get("erase", "")[:32],
        audit=audit, flash=await take_flash(request), **await summary_context(request),
    )


async def export(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    data = await fields(request)
    formats = [f for f in EXPORT_FORMATS if data.get(f"format.{f}")]
    if not formats:
        raise BadInput("choose at least one format")
    # Audited first, so that the export itself lists its own making.
    await p.audit.record(who, "data.export", "", after={"formats": formats})
    made, password = await p.exports.create(who.customer, await p.deps.rights.collect(who.customer), formats)
    await p.deps.redis.set(SHOWN_ONCE + who.customer + ":" + made.id, password, ex=300)
    await _recount(request, who.customer)
    raise web.HTTPSeeOther(f"/portal/data?export={made.id}#export")


async def download(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    body = await p.exports.download(who.customer, request.match_info["eid"][:64])
    if body is None:
        raise NotFound("no such export (or it has expired)")
    await p.audit.record(who, "data.download", request.match_info["eid"][:64])
    return web.Response(
        body=body, content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="kefu-my-data.zip"', "Cache-Control": "private, no-store"},
    )


async def delete_audio(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    mid = request.match_info["mid"][:200]
    if not await p.deps.rights.delete_audio(who.customer, mid):
        raise NotFound("no such voice note")
    await p.audit.record(who, "voice.delete_audio", mid)
    await _recount(request, who.customer)
    raise web.HTTPSeeOther("/portal/data#voice")


async def erase_request(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    code = await p.deps.rights.request_erasure(who.customer, ttl_s=900)
    await p.audit.record(who, "erasure.request")
    raise web.HTTPSeeOther(f"/portal/data?erase={code}#erase")


async def erase_confirm(request: web.Request) -> web.StreamResponse:
    p = portal(request)
    who = viewer(request)
    data = await fields(request)
    record = await p.deps.rights.confirm_erasure(who.customer, one(data, "code", max_len=64), actor=who.customer, via="portal")
    session = request.get(SESSION)
    if session is not None:
        await p.sessions.delete(session)
    response = render(request, "erased.html", record=record, viewer=None, csrf="")
    clear_cookie(request, response)
    return response


ROUTES = (
    PortalRoute("GET", "/data", data_page, Module.DATA, "data"),
    PortalRoute("POST", "/data/export", export, Module.DATA, "data_export"),
    PortalRoute("GET", "/data/exports/{eid}", download, Module.DATA, "data_download"),
    PortalRoute("POST", "/data/voice/{mid}/delete-audio", delete_audio, Module.DATA, "data_delete_audio"),
    PortalRoute("POST", "/data/erase", erase_request, Module.DATA, "data_erase"),
    PortalRoute("POST", "/data/erase/confirm", erase_confirm, Module.DATA, "data_erase_confirm"),
)
