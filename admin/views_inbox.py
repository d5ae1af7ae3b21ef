"""The agents' pages: the waiting queue, a conversation, its actions, search, live events."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import HttpVersion11, web

from admin.actions import timeline
from admin.live import PageStream, message_view
from admin.roles import STAFF
from admin.state import ConsoleRoute, console, current_user
from admin.zones import zone
from bot.conversation.handoff import WAITING, HandoffError
from bot.conversation.state import AGENT_PREFIX
from bot.customer_card import CardSubject
from bot.messages import MediaRef
from channels.errors import PlatformError
from webui.errors import BadInput, NotFound
from webui.forms import fields, one

log = logging.getLogger(__name__)

MEDIA_CACHE_S = 3600
MEDIA_PREFIX = "kefu:console:media:"


async def inbox(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = current_user(request)
    waiting = await c.deps.handoff.waiting()
    mine = await c.deps.states.owned_by(AGENT_PREFIX + user.name)
    return await c.pages.render(request, "inbox.html", waiting=waiting, mine=mine, now=time.time())


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for the inbox (no ``conversation``) or one conversation."""
    c = console(request)
    user = current_user(request)
    conversation = request.query.get("conversation", "")[:256]
    tz = await zone(user.time_zone)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    if request.version >= HttpVersion11:
        response.enable_chunked_encoding()  # said here, so the hub frames what it writes alike
    await c.hub.listening()
    await response.prepare(request)
    # The first write sends the headers; from then on the hub writes the page's events
    # to the connection itself, and this handler only waits for the stream to end.
    await response.write(b"retry: 2000\n: live\n\n")
    transport = request.transport
    if transport is None or transport.is_closing():
        return response  # the page went away meanwhile
    stream = PageStream(conversation, tz, transport, chunked=response.chunked)
    c.hub.attach(stream)
    c.hub.catch_up(stream, _rendered_at(request))
    try:
        await stream.ended
    finally:
        c.hub.detach(stream)
    return response


def _rendered_at(request: web.Request) -> float:
    """When the page that opens the stream was rendered (``since``, seconds since the
    epoch); 0 when absent or not a time."""
    try:
        since = float(request.query.get("since", "0")[:32])
    except ValueError:
        return 0.0
    return since if math.isfinite(since) and since > 0 else 0.0


async def _conversation_or_404(request: web.Request) -> Any:
    c = console(request)
    state = await c.deps.states.get(request.match_info["cid"])
    if state is None:
        raise NotFound(c.pages.text(request, "no_conversation"))
    return state


async def conversation(request: web.Request) -> web.StreamResponse:
    c = console(request)
    user = current_user(request)
    state = await _conversation_or_404(request)
    docs = await c.deps.store.conversation_messages(state.conversation, limit=500)
    subject = CardSubject(state.customer, state.channel, state.account, state.sender, state.conversation)
    actions = await c.deps.conversation_actions(subject) if c.deps.conversation_actions else ()
    entries = timeline([message_view(d) for d in docs], actions, c.pages.language(request))
    notes = await c.notes.of(state.conversation)
    canned = await c.canned.all(state.language)
    agents = [u for u in await c.users.with_roles(STAFF) if u.name != user.name]
    history = await c.deps.store.customer_conversations(state.customer, limit=20)
    window = await _reply_window(request, state)
    card = await c.deps.customer_card(subject) if c.deps.customer_card else ()
    waiting_since = await c.deps.redis.zscore(WAITING, state.conversation)
    return await c.pages.render(
        request, "conversation.html", state=state, entries=entries, notes=notes, canned=canned, agents=agents,
        history=[h for h in history if h["_id"] != state.conversation], window=window, now=time.time(),
        waiting_since=waiting_since, card=card,
    )


async def _reply_window(request: web.Request, state: Any) -> dict[str, Any]:
    """Whether the customer's platform still takes a free-form reply, and until when."""
    c = console(request)
    channel = c.deps.channels(state.channel, state.account)
    last = await c.deps.store.last_inbound(state.conversation)
    if channel is None:
        return {"open": False, "reason": "no_channel", "until": None}
    if last is None:
        return {"open": True, "reason": "", "until": None}
    hints = dict(state.reply_hints)
    deadline = channel.reply_deadline(float(last.get("ts") or 0.0), hints)
    if deadline is None:
        return {"open": True, "reason": "", "until": None}
    return {"open": deadline > time.time(), "reason": f"window_{state.channel}", "until": deadline}


async def _act(request: web.Request) -> tuple[Any, Any, dict[str, str]]:
    c = console(request)
    return c, current_user(request), await fields(request)


def _back_to(cid: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/admin/conversations/{cid}")


async def claim(request: web.Request) -> web.StreamResponse:
    c, user, _ = await _act(request)
    cid = request.match_info["cid"]
    before = await c.deps.states.get(cid)
    if before is None:
        raise NotFound(c.pages.text(request, "no_conversation"))
    if before.agent and before.agent != user.name:
        raise BadInput(c.pages.text(request, "claimed_by", agent=before.agent))
    try:
        state = await c.deps.handoff.claim(cid, user.name)
    except HandoffError as exc:
        # The other agent won the race inside the hand-off's lock: say who has it.
        now = await c.deps.states.get(cid)
        if now is not None and now.agent and now.agent != user.name:
            raise BadInput(c.pages.text(request, "claimed_by", agent=now.agent)) from exc
        raise
    await c.audit.record(user.name, "conversation.claim", cid, before=before.owner, after=state.owner)
    raise _back_to(cid)


async def reply(request: web.Request) -> web.StreamResponse:
    c, user, data = await _act(request)
    cid = request.match_info["cid"]
    text = one(data, "text", max_len=2000)
    state = await _conversation_or_404(request)
    window = await _reply_window(request, state)
    if not window["open"]:
        raise BadInput(c.pages.text(request, "window_closed_" + state.channel if window["reason"] != "no_channel" else "no_channel"))
    key = await c.deps.handoff.agent_reply(cid, user.name, text)
    await c.audit.record(user.name, "conversation.reply", cid, after={"message": "out:" + key})
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response({"queued": "out:" + key})
    raise _back_to(cid)


async def note(request: web.Request) -> web.StreamResponse:
    c, user, data = await _act(request)
    state = await _conversation_or_404(request)
    added = await c.notes.add(state.conversation, user.name, one(data, "text", max_len=4000))
    await c.audit.record(user.name, "conversation.note", state.conversation, after={"at": added.at})
    raise _back_to(state.conversation)


async def transfer(request: web.Request) -> web.StreamResponse:
    c, user, data = await _act(request)
    cid = request.match_info["cid"]
    target = await c.users.require(one(data, "to", max_len=64))
    if target.role not in STAFF or target.disabled:
        raise BadInput(c.pages.text(request, "transfer_needs_agent"))
    state = await c.deps.handoff.transfer(cid, user.name, target.name)
    await c.audit.record(user.name, "conversation.transfer", cid, before=AGENT_PREFIX + user.name, after=state.owner)
    raise web.HTTPSeeOther("/admin/inbox")


async def hand_back(request: web.Request) -> web.StreamResponse:
    return await _release(request, "handback")


async def close(request: web.Request) -> web.StreamResponse:
    return await _release(request, "close")


async def _release(request: web.Request, action: str) -> web.StreamResponse:
    """Hand back to the bot or close: either way the agent lets the conversation go."""
    c, user, _ = await _act(request)
    cid = request.match_info["cid"]
    release = c.deps.handoff.hand_back if action == "handback" else c.deps.handoff.close
    state = await release(cid, user.name)
    await c.audit.record(user.name, f"conversation.{action}", cid, before=AGENT_PREFIX + user.name, after=state.owner)
    raise web.HTTPSeeOther("/admin/inbox")


async def media(request: web.Request) -> web.StreamResponse:
    """A voice note or an image as the browser shows it, voice converted to WAV (browsers
    play neither AMR nor SILK) and cached for an hour. A voice note comes from the voice
    archive, where the worker kept it on arrival; the platform is asked only for what is
    not there (pictures, notes from before the archive or above its size limit)."""
    c = console(request)
    doc = await c.deps.store.message(request.match_info["mid"])
    if doc is None or doc.get("kind") not in ("voice", "image") or not doc.get("media"):
        raise NotFound("no voice note or image here")
    cache_key = MEDIA_PREFIX + str(doc["_id"])
    found = await c.deps.redis.get(cache_key)
    cached = found if isinstance(found, bytes) else None  # the client returns bytes (no decode_responses)
    if cached is None:
        ref = MediaRef(**doc["media"])
        raw, format = await _original(request, doc, ref)
        convert = c.deps.audio_to_browser
        if doc["kind"] == "voice" and convert is not None:
            cached = await asyncio.to_thread(convert, raw, format)
        else:
            cached = raw
        await c.deps.redis.set(cache_key, cached, ex=MEDIA_CACHE_S)
    return web.Response(
        body=cached, content_type=_sniff(cached),
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff", "Content-Disposition": "inline"},
    )


async def _original(request: web.Request, doc: dict[str, Any], ref: MediaRef) -> tuple[bytes, str]:
    """The media's bytes as the platform sent them, and their format."""
    c = console(request)
    archive = c.deps.voice_archive if doc["kind"] == "voice" else None
    if archive is not None:
        kept = await archive.get(str(doc["_id"]))
        if kept is not None:
            return kept.audio, kept.format
    channel = c.deps.channels(doc["channel"], doc["account"])
    if channel is None:
        raise NotFound("the channel of this message is not configured")
    try:
        raw = await channel.fetch_media(ref)
    except PlatformError as exc:
        raise NotFound(c.pages.text(request, "media_gone")) from exc
    if archive is not None:
        # A note from before the archive: kept now, aged from when it came.
        await archive.keep(str(doc["_id"]), raw, ref.format, customer=str(doc.get("customer") or ""), at=float(doc.get("ts") or time.time()))
    return raw, ref.format


def _sniff(data: bytes) -> str:
    # Served types come from the bytes, never from what a platform or customer claimed.
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "application/octet-stream"


async def search(request: web.Request) -> web.StreamResponse:
    c = console(request)
    q = request.query
    criteria = {
        "customer": q.get("customer", "").strip()[:128],
        "channel": q.get("channel", "").strip()[:32],
        "text": q.get("text", "").strip()[:200],
        "since": q.get("since", "").strip()[:10],
        "until": q.get("until", "").strip()[:10],
    }
    tz = await zone(current_user(request).time_zone)
    results: list[dict[str, Any]] = []
    if any(criteria.values()):
        results = await c.deps.store.search_conversations(
            customer=criteria["customer"], channel=criteria["channel"], text=criteria["text"],
            since=_day(criteria["since"], tz), until=_day(criteria["until"], tz, end=True),
        )
    return await c.pages.render(request, "search.html", criteria=criteria, results=results)


def _day(value: str, zone: ZoneInfo, *, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=zone)
    except ValueError:
        raise BadInput("dates are written YYYY-MM-DD") from None
    return day.timestamp() + (86_400 if end else 0)


ROUTES = (
    ConsoleRoute("GET", "/inbox", inbox, STAFF, "inbox"),
    ConsoleRoute("GET", "/events", events, STAFF, "events"),
    ConsoleRoute("GET", "/search", search, STAFF, "search"),
    ConsoleRoute("GET", "/conversations/{cid}", conversation, STAFF, "conversation"),
    ConsoleRoute("POST", "/conversations/{cid}/claim", claim, STAFF, "claim"),
    ConsoleRoute("POST", "/conversations/{cid}/reply", reply, STAFF, "reply"),
    ConsoleRoute("POST", "/conversations/{cid}/note", note, STAFF, "note"),
    ConsoleRoute("POST", "/conversations/{cid}/transfer", transfer, STAFF, "transfer"),
    ConsoleRoute("POST", "/conversations/{cid}/handback", hand_back, STAFF, "handback"),
    ConsoleRoute("POST", "/conversations/{cid}/close", close, STAFF, "close"),
    ConsoleRoute("GET", "/messages/{mid}/media", media, STAFF, "media"),
)
