"""The hand-off API the console (and any CRM) calls: who waits, claim, reply, hand back.

    GET  /api/conversations/waiting                 conversations:read
    GET  /api/conversations/{id}                    conversations:read   state + messages
    POST /api/conversations/{id}/claim   {agent}    conversations:write
    POST /api/conversations/{id}/reply   {agent, text}
    POST /api/conversations/{id}/handback {agent}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from aiohttp import web

from bot.apikeys import check, json_error
from bot.conversation.handoff import HandoffError
from bot.runtime import RUNTIME

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(HandoffError):
    code = "bad_request"
    status = 400


def _guarded(scope: str, handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        refused = check(request, scope)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except HandoffError as exc:
            return json_error(getattr(exc, "status", 409), exc.code, exc.message)
        except TimeoutError as exc:
            return json_error(409, "busy", str(exc))

    return run


async def _body(request: web.Request, *fields: str) -> dict[str, str]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body: not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body: expected a JSON object")
    out: dict[str, str] = {}
    for name in fields:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 4000:
            raise BadRequest(f"body: {name} must be a non-empty string (at most 4000 characters)")
        out[name] = value.strip()
    return out


async def waiting(request: web.Request) -> web.StreamResponse:
    return web.json_response({"waiting": await request.app[RUNTIME].handoff.waiting()})


async def conversation(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    cid = request.match_info["cid"]
    state = await rt.states.get(cid)
    if state is None:
        return json_error(404, "unknown_conversation", f"no conversation {cid}")
    messages = await rt.store.conversation_messages(cid, limit=int(request.query.get("limit", "100")))
    return web.json_response({"state": asdict(state), "messages": messages}, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def claim(request: web.Request) -> web.StreamResponse:
    data = await _body(request, "agent")
    state = await request.app[RUNTIME].handoff.claim(request.match_info["cid"], data["agent"])
    return web.json_response({"conversation": state.conversation, "owner": state.owner})


async def reply(request: web.Request) -> web.StreamResponse:
    data = await _body(request, "agent", "text")
    key = await request.app[RUNTIME].handoff.agent_reply(request.match_info["cid"], data["agent"], data["text"])
    return web.json_response({"queued": key}, status=202)


async def hand_back(request: web.Request) -> web.StreamResponse:
    data = await _body(request, "agent")
    state = await request.app[RUNTIME].handoff.hand_back(request.match_info["cid"], data["agent"])
    return web.json_response({"conversation": state.conversation, "owner": state.owner})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/conversations/waiting", _guarded("conversations:read", waiting)),
        web.get("/api/conversations/{cid}", _guarded("conversations:read", conversation)),
        web.post("/api/conversations/{cid}/claim", _guarded("conversations:write", claim)),
        web.post("/api/conversations/{cid}/reply", _guarded("conversations:write", reply)),
        web.post("/api/conversations/{cid}/handback", _guarded("conversations:write", hand_back)),
    ]

