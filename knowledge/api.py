"""The knowledge base's JSON API (scoped keys: ``knowledge:read``, ``knowledge:write``).

    GET    /api/kb/entries?tag=&skip=&limit=       knowledge:read   list
    POST   /api/kb/entries            {entry}      knowledge:write  create (409 if it exists)
    GET    /api/kb/entries/{id}                    knowledge:read
    PUT    /api/kb/entries/{id}       {entry, version?}             create or change; with
                                                   ``version`` only if still at that version
    DELETE /api/kb/entries/{id}?version=N          knowledge:write
    GET    /api/kb/entries/{id}/versions           knowledge:read   saved versions, newest first
    POST   /api/kb/search             {q, products?}  knowledge:read  what the bot would answer
    GET    /api/kb/missed?reason=&limit=           knowledge:read   turns kept for the trainer
    GET    /api/kb/missed/groups?reason=&limit=    knowledge:read   the same, similar sentences together
                                                   (labelled turns left out)
    POST   /api/kb/labels             {label}      knowledge:write  a trainer labels a group
    GET    /api/kb/labels?kind=&limit=             knowledge:read
    GET    /api/kb/containment?days=&tz=           knowledge:read   figures per day

A label is ``{"kind": "intent", "texts": [...], "intent": "report_repair",
"entities": {"device_model": "XK-8800"}}``, ``{"kind": "entry", "texts": [...],
"entry": "<id>"}`` (the texts become question forms of that entry; with ``"new_entry":
{entry}`` the entry is created first), ``{"kind": "no_answer", "texts": [...]}`` (the base has
no answer: a person answers) or ``{"kind": "ignore", "texts": [...]}``. A label made here
is approved as it is made (the key holder is its reviewer); labels made in the console
wait for a second person (:mod:`knowledge.review`).

Keys, scopes and the error shape come from the ``/api`` sub-app's middleware
(:mod:`bot.api`): 400 invalid entry or body, 404 unknown entry, 409 version conflict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bot.api import json_body, requires
from knowledge.containment import CONTAINMENT, per_day
from knowledge.entry import entry_from_json
from knowledge.labels import KINDS
from knowledge.errors import InvalidEntry
from knowledge.service import KNOWLEDGE
from knowledge.trainer import group_similar


def _int(value: str | None, name: str, default: int, *, low: int = 0, high: int = 1_000_000) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidEntry(f"{name}: expected a whole number") from None
    if not low <= number <= high:
        raise InvalidEntry(f"{name}: expected {low}..{high}")
    return number


def _version(data: dict[str, Any]) -> int | None:
    value = data.get("version")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidEntry("version: expected a whole number")
    return value


@requires("knowledge:read")
async def list_entries(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    q = request.query
    found, total = await kb.store.page(
        tag=q.get("tag", ""), skip=_int(q.get("skip"), "skip", 0), limit=_int(q.get("limit"), "limit", 50, low=1, high=500)
    )
    return web.json_response({"total": total, "entries": [e.to_json() for e in found]})


@requires("knowledge:write")
async def create_entry(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    entry = entry_from_json(await json_body(request))
    saved, _ = await kb.store.save(entry, actor="api", expected_version=0)
    return web.json_response(saved.to_json(), status=201)


@requires("knowledge:read")
async def get_entry(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    return web.json_response((await kb.store.get(request.match_info["id"])).to_json())


@requires("knowledge:write")
async def put_entry(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    data = await json_body(request)
    entry = entry_from_json(data, entry_id=request.match_info["id"])
    saved, changed = await kb.store.save(entry, actor="api", expected_version=_version(data))
    return web.json_response({**saved.to_json(), "changed": changed})


@requires("knowledge:write")
async def delete_entry(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    version = request.query.get("version")
    await kb.store.delete(
        request.match_info["id"], actor="api", expected_version=_int(version, "version", 0) if version else None
    )
    return web.json_response({"deleted": request.match_info["id"]})


@requires("knowledge:read")
async def entry_versions(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    return web.json_response({"versions": await kb.store.versions(request.match_info["id"])})


@requires("knowledge:read")
async def search(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    data = await json_body(request)
    text = data.get("q")
    if not isinstance(text, str) or not text.strip() or len(text) > 1000:
        raise InvalidEntry("q: a question of 1-1000 characters")
    products = data.get("products") or []
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        raise InvalidEntry("products: a list of model numbers")
    found = await kb.retriever.search(text.strip(), products=frozenset(products))
    return web.json_response({
        "answer": found.answer.id if found.answer else None,
        "matches": [
            {"entry": m.entry.id, "title": m.entry.title, "score": round(m.score, 4), "dense": round(m.dense, 4),
             "lexical": round(m.lexical, 4)}
            for m in found.matches
        ],
    })


@requires("knowledge:read")
async def missed(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    q = request.query
    turns = await kb.missed.recent(reason=q.get("reason", ""), limit=_int(q.get("limit"), "limit", 100, low=1, high=1000))
    return web.json_response({"turns": [asdict(t) for t in turns]})


@requires("knowledge:read")
async def missed_groups(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    q = request.query
    turns = await kb.missed.recent(
        reason=q.get("reason", ""), limit=_int(q.get("limit"), "limit", 500, low=1, high=5000), unlabelled=True
    )
    vectors = await kb.encoder.encode([t.text for t in turns])
    groups = await kb.encoder.run(lambda: group_similar(turns, vectors))
    return web.json_response({"groups": [
        {"example": g.example, "size": g.size, "texts": list(g.texts), "reasons": dict(g.reasons)} for g in groups
    ]})


@requires("knowledge:write")
async def add_label(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    done = await kb.review.label(await json_body(request), by="api", proposed=False)
    body = {**done.label.to_json(), "turns_marked": done.turns_marked, "entry_saved": done.entry_saved}
    return web.json_response(body, status=201)


@requires("knowledge:read")
async def list_labels(request: web.Request) -> web.StreamResponse:
    kb = request.config_dict[KNOWLEDGE]
    kind = request.query.get("kind", "")
    if kind and kind not in KINDS:
        raise InvalidEntry(f"kind: one of {', '.join(KINDS)}")
    found = await kb.labels.listing(kind=kind, limit=_int(request.query.get("limit"), "limit", 100, low=1, high=1000))
    return web.json_response({"labels": [label.to_json() for label in found]})


@requires("knowledge:read")
async def containment(request: web.Request) -> web.StreamResponse:
    q = request.query
    days = _int(q.get("days"), "days", 7, low=1, high=92)
    offset = _int(q.get("tz"), "tz", 8, low=-12, high=14)  # hours from UTC; China by default
    tz = dt.timezone(dt.timedelta(hours=offset))
    last = dt.datetime.now(tz).date()
    if q.get("until"):
        try:
            last = dt.date.fromisoformat(q["until"])
        except ValueError:
            raise InvalidEntry("until: a date, YYYY-MM-DD") from None
    figures = await per_day(request.config_dict[CONTAINMENT], last=last, days=days, tz=tz)
    return web.json_response({"tz": offset, "days": [f.to_json() for f in figures]})


def routes() -> list[web.RouteDef]:
    """Paths relative to ``/api``."""
    return [
        web.get("/kb/entries", list_entries),
        web.post("/kb/entries", create_entry),
        web.get("/kb/entries/{id}", get_entry),
        web.put("/kb/entries/{id}", put_entry),
        web.delete("/kb/entries/{id}", delete_entry),
        web.get("/kb/entries/{id}/versions", entry_versions),
        web.post("/kb/search", search),
        web.get("/kb/missed", missed),
        web.get("/kb/missed/groups", missed_groups),
        web.post("/kb/labels", add_label),
        web.get("/kb/labels", list_labels),
        web.get("/kb/containment", containment),
    ]
