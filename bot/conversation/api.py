"""The hand-off API the console (and any CRM) calls: who waits, claim, reply, hand back.

    GET  /api/conversations/waiting                 conversations:read
    GET  /api/conversations/{id}                    conversations:read   state + messages
    POST /api/conversations/{id}/claim   {agent}    conversations:write
    POST /api/conversations/{id}/reply   {agent, text}
    POST /api/conversations/{id}/handback {agent}
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from bot.api import BadRequest, dumps, json_body, json_error, requires
from bot.runtime import RUNTIME


async def _fields(request: web.Request, *fields: str) -> dict[str, str]:
    data = await json_body(request)
    out: dict[str, str] = {}
    for name in fields:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 4000:
            raise BadRequest(f"body: {name} must be a non-empty string (at most 4000 characters)", field=name)
        out[name] = value.strip()
    return out


@requires("conversations:read")
async def waiting(request: web.Request) -> web.StreamResponse:
    return web.json_response({"waiting": await request.config_dict[RUNTIME].handoff.waiting()})


@requires("conversations:read")
async def conversation(request: web.Request) -> web.StreamResponse:
    rt = request.config_dict[RUNTIME]
    cid = request.match_info["cid"]
    state = await rt.states.get(cid)
    if state is None:
        return json_error(404, "unknown_conversation", f"no conversation {cid}")
    messages = await rt.store.conversation_messages(cid, limit=int(request.query.get("limit", "100")))
    return web.json_response({"state": asdict(state), "messages": messages}, dumps=dumps)


@requires("conversations:write")
async def claim(request: web.Request) -> web.StreamResponse:
    data = await _fields(request, "agent")
    state = await request.config_dict[RUNTIME].handoff.claim(request.match_info["cid"], data["agent"])
    return web.json_response({"conversation": state.conversation, "owner": state.owner})


@requires("conversations:write")
async def reply(request: web.Request) -> web.StreamResponse:
    data = await _fields(request, "agent", "text")
    key = await request.config_dict[RUNTIME].handoff.agent_reply(request.match_info["cid"], data["agent"], data["text"])
    return web.json_response({"queued": key}, status=202)


@requires("conversations:write")
async def hand_back(request: web.Request) -> web.StreamResponse:
    data = await _fields(request, "agent")
    state = await request.config_dict[RUNTIME].handoff.hand_back(request.match_info["cid"], data["agent"])
    return web.json_response({"conversation": state.conversation, "owner": state.owner})


def routes() -> list[web.RouteDef]:
    """The hand-off endpoints, relative to ``/api``."""
    return [
        web.get("/conversations/waiting", waiting),
        web.get("/conversations/{cid}", conversation),
        web.post("/conversations/{cid}/claim", claim),
        web.post("/conversations/{cid}/reply", reply),
        web.post("/conversations/{cid}/handback", hand_back),
    ]
