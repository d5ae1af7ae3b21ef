"""Outbox health: dead letters with their reason; retry or discard each.

Two kinds can be retried: a reply the outbox gave up on goes back to the outbox, a
customer's message the workers gave up on goes back to the inbound queue (handled
afresh, with new attempts). Entries that are no message at all can only be discarded."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from admin.roles import STAFF
from admin.state import ConsoleRoute, console, current_user
from bot.messages import InboundMessage
from webui.errors import BadInput, NotFound
from webui.sessions import SESSION


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    out = {"id": doc["_id"], "kind": doc.get("kind", ""), "reason": doc.get("reason", ""), "attempts": doc.get("attempts", 0), "at": doc.get("at")}
    try:
        payload = json.loads(doc.get("payload") or "{}")
    except ValueError:
        payload = {}
    out["channel"] = f"{payload.get('channel', '')}/{payload.get('account', '')}".strip("/")
    out["conversation"] = payload.get("conversation", "")
    out["retryable"] = doc.get("kind") == "outbound" or _inbound_message(doc) is not None
    return out


def _inbound_message(doc: dict[str, Any]) -> InboundMessage | None:
    """The customer's message a dead letter carries, or None (not inbound, or unreadable)."""
    if doc.get("kind") != "inbound":
        return None
    try:
        return InboundMessage.from_json(str(doc.get("payload") or ""))
    except (ValueError, TypeError, KeyError):
        return None


async def dead_letters(request: web.Request) -> web.StreamResponse:
    c = console(request)
    rows = [_summary(d) for d in await c.deps.store.dead_letters_recent(200)]
    return await c.pages.render(request, "outbox.html", rows=rows)


async def retry(request: web.Request) -> web.StreamResponse:
    c = console(request)
    existing = await c.deps.store.find_dead_letter(request.match_info["rid"])
    message = _inbound_message(existing) if existing is not None else None
    if existing is not None and existing.get("kind") != "outbound" and (message is None or c.deps.inbound is None):
        raise BadInput(c.pages.text(request, "retry_not_a_message"))
    doc = await _take(request, "outbox.retry", after="queued")
    if message is not None and c.deps.inbound is not None:
        await c.deps.inbound.requeue(message)
        await c.sessions.set_flash(request[SESSION], c.pages.text(request, "retried_inbound"))
    else:
        await c.deps.outbox.requeue(str(doc["payload"]))
        await c.sessions.set_flash(request[SESSION], c.pages.text(request, "retried"))
    raise web.HTTPSeeOther("/admin/outbox")


async def discard(request: web.Request) -> web.StreamResponse:
    await _take(request, "outbox.discard", after=None)
    raise web.HTTPSeeOther("/admin/outbox")


async def _take(request: web.Request, action: str, *, after: Any) -> dict[str, Any]:
    """Remove the dead letter (exactly one request wins it) and record who did what."""
    c = console(request)
    record = request.match_info["rid"]
    doc = await c.deps.store.take_dead_letter(record)
    if doc is None:
        raise NotFound(c.pages.text(request, "dead_letter_gone"))
    await c.audit.record(current_user(request).name, action, record, before=_summary(doc), after=after)
    return doc


ROUTES = (
    ConsoleRoute("GET", "/outbox", dead_letters, STAFF, "outbox"),
    ConsoleRoute("POST", "/outbox/{rid}/retry", retry, STAFF, "outbox_retry"),
    ConsoleRoute("POST", "/outbox/{rid}/discard", discard, STAFF, "outbox_discard"),
)
