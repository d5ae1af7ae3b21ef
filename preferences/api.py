"""REST API for the CRM and marketers, and the wiring of the preferences package.

``setup(app, role)`` adds the routes and a cleanup context that builds the store, the
engine and the data-rights service from the gateway's :class:`~bot.runtime.Runtime`,
registers the engine's outbox give-up hook (channel fallback), puts the chat skills in
front of the dispatcher's groups, and, in worker processes, runs the due-list.

Authentication: ``Authorization: Bearer <key>`` (or ``X-API-Key``). Keys are configured
in ``kefu.yml``::

    api:
      keys:
        - {key: "...", scopes: [prefs:read, prefs:write, notify]}
        - {key_sha256: "<hex>", scopes: [marketing]}

Only SHA-256 digests are kept in memory and compared in constant time. Scopes:
``prefs:read``, ``prefs:write``, ``notify``, ``data:export``, ``data:erase``,
``marketing``. The OpenAPI document is served at ``/api/openapi.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.apikeys import API_KEYS, ApiKeys, check, json_error
from bot.runtime import RUNTIME
from preferences.clock import Clock, SystemClock
from preferences.data_rights import DataRights
from preferences.engine import NotificationEngine
from preferences.errors import InvalidPreference, PreferenceError
from preferences.render import Renderer
from preferences.skills import build_skills
from preferences.store import DEFAULT_LAYER, PreferenceStore, segment_layer

log = logging.getLogger(__name__)

@dataclass
class Services:
    """What the handlers use; built per app in the cleanup context."""

    prefs: PreferenceStore
    engine: NotificationEngine
    rights: DataRights
    keys: ApiKeys


SERVICES = web.AppKey("preferences", Services)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


error = json_error


def requires(scope: str) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            refused = check(request, scope)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except PreferenceError as exc:
                extra = {"field": exc.field} if isinstance(exc, InvalidPreference) and exc.field else {}
                return error(exc.status, exc.code, exc.message, **extra)

        checked.__doc__ = handler.__doc__
        setattr(checked, "scope", scope)
        return checked

    return wrap


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidPreference("body: not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise InvalidPreference("body: expected a JSON object", field="body")
    return data


def _actor(request: web.Request, data: Mapping[str, Any]) -> str:
    return str(data.get("actor") or "api")


def _via(data: Mapping[str, Any]) -> str:
    return str(data.get("via") or "api")


async def _customer_view(svc: Services, cid: str) -> dict[str, Any]:
    doc = await svc.prefs.get(cid)
    return {
        "customer_id": cid,
        "profile": doc.get("profile", {}),
        "segments": doc.get("segments", []),
        "settings": doc.get("settings", {}),
        "effective": await svc.prefs.effective_layer(cid),
        "consents_active": doc.get("consents_active", []),
        "version": doc.get("version"),
    }


# -- handlers ---------------------------------------------------------------------------
@requires("prefs:read")
async def get_customer(request: web.Request) -> web.StreamResponse:
    """The customer's own settings, the effective (merged) settings and profile."""
    svc = request.app[SERVICES]
    return web.json_response(await _customer_view(svc, request.match_info["cid"]))


@requires("prefs:write")
async def put_customer(request: web.Request) -> web.StreamResponse:
    """Create the customer or replace their own settings layer (body: settings, profile, segments)."""
    svc = request.app[SERVICES]
    cid = request.match_info["cid"]
    data = await body(request)
    settings = data.get("settings", {})
    profile = data.get("profile") or {}
    segments = data.get("segments")
    if not isinstance(profile, dict) or (segments is not None and not isinstance(segments, list)):
        raise InvalidPreference("profile must be an object and segments a list", field="profile")
    created = await svc.prefs.create(cid, profile=profile, settings=settings, segments=segments, actor=_actor(request, data), via=_via(data))
    if not created:
        await svc.prefs.update_profile(cid, profile, segments)
        await svc.prefs.change(cid, settings, actor=_actor(request, data), via=_via(data), replace=True)
    return web.json_response(await _customer_view(svc, cid), status=201 if created else 200)


@requires("prefs:write")
async def patch_customer(request: web.Request) -> web.StreamResponse:
    """Merge a partial settings layer into the customer's own settings."""
    svc = request.app[SERVICES]
    cid = request.match_info["cid"]
    data = await body(request)
    await svc.prefs.change(cid, data.get("settings", {}), actor=_actor(request, data), via=_via(data))
    return web.json_response(await _customer_view(svc, cid))


@requires("prefs:read")
async def get_history(request: web.Request) -> web.StreamResponse:
    """Every change of the customer's settings: version, who, when, via, old -> new."""
    svc = request.app[SERVICES]
    cid = request.match_info["cid"]
    await svc.prefs.get(cid)
    return web.json_response({"customer_id": cid, "history": await svc.prefs.list_history(cid)})


@requires("prefs:write")
async def post_rollback(request: web.Request) -> web.StreamResponse:
    """Restore the settings as they were right after ``version`` (recorded as a new version)."""
    svc = request.app[SERVICES]
    cid = request.match_info["cid"]
    data = await body(request)
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidPreference("version: expected an integer", field="version")
    await svc.prefs.get(cid)
    new = await svc.prefs.rollback(cid, version, actor=_actor(request, data), via=_via(data))
    return web.json_response({**await _customer_view(svc, cid), "version": new})


@requires("prefs:write")
async def post_consent(request: web.Request) -> web.StreamResponse:
    """Record consent given or withdrawn (body: scope, granted, evidence)."""
    svc = request.app[SERVICES]
    data = await body(request)
    if not isinstance(data.get("granted"), bool):
        raise InvalidPreference("granted: expected true/false", field="granted")
    rec = await svc.prefs.record_consent(
        request.match_info["cid"], str(data.get("scope", "")), data["granted"],
        via=_via(data), actor=_actor(request, data), evidence=str(data.get("evidence", "")),
    )
    return web.json_response(rec, status=201)


@requires("prefs:read")
async def get_consents(request: web.Request) -> web.StreamResponse:
    """The customer's consent records, newest first."""
    svc = request.app[SERVICES]
    cid = request.match_info["cid"]
    await svc.prefs.get(cid)
    return web.json_response({"customer_id": cid, "consents": await svc.prefs.list_consents(cid)})


@requires("notify")
async def post_notify(request: web.Request) -> web.StreamResponse:
    """Notify a customer (body: customer_id, topic, importance, data, key)."""
    svc = request.app[SERVICES]
    data = await body(request)
    payload = data.get("data", {})
    if not isinstance(payload, dict):
        raise InvalidPreference("data: expected an object", field="data")
    key = data.get("key")
    decision = await svc.engine.notify(
        str(data.get("customer_id", "")), str(data.get("topic", "")), str(data.get("importance", "normal")),
        payload, key=str(key) if key is not None else None,
    )
    return web.json_response(
        {
            "notification_id": decision.notification_id,
            "action": decision.action.value,
            "reason": decision.reason,
            "channel": decision.channel,
            "deliver_at": decision.deliver_at,
            "duplicate": decision.duplicate,
        },
        status=200 if decision.duplicate else 202,
    )


@requires("data:export")
async def post_export(request: web.Request) -> web.StreamResponse:
    """Build the customer's export and send them the download link."""
    svc = request.app[SERVICES]
    export_id, url = await svc.rights.export_my_data(request.match_info["cid"], via="api")
    return web.json_response({"export_id": export_id, "url": url}, status=202)


@requires("data:erase")
async def post_erasure(request: web.Request) -> web.StreamResponse:
    """Start an erasure: returns the confirmation code the confirm call needs (15 min)."""
    svc = request.app[SERVICES]
    code = await svc.rights.request_erasure(request.match_info["cid"])
    return web.json_response({"confirmation": code, "expires_in": 900}, status=202)


@requires("data:erase")
async def post_erasure_confirm(request: web.Request) -> web.StreamResponse:
    """Erase the customer's data (body: confirmation); returns the audit record."""
    svc = request.app[SERVICES]
    data = await body(request)
    audit = await svc.rights.confirm_erasure(
        request.match_info["cid"], str(data.get("confirmation", "")), actor=_actor(request, data), via=_via(data)
    )
    return web.json_response(audit)


@requires("marketing")
async def get_layers(request: web.Request) -> web.StreamResponse:
    """The marketers' global default and segment layers."""
    svc = request.app[SERVICES]
    return web.json_response({"layers": await svc.prefs.list_layers()})


@requires("marketing")
async def put_default(request: web.Request) -> web.StreamResponse:
    """Replace the global default layer (body: settings)."""
    svc = request.app[SERVICES]
    data = await body(request)
    version = await svc.prefs.put_layer(DEFAULT_LAYER, data.get("settings", {}), actor=_actor(request, data))
    return web.json_response({"layer": DEFAULT_LAYER, "version": version, "settings": await svc.prefs.get_layer(DEFAULT_LAYER)})


@requires("marketing")
async def put_segment(request: web.Request) -> web.StreamResponse:
    """Replace one segment's layer (body: settings); customers join via their ``segments``."""
    svc = request.app[SERVICES]
    data = await body(request)
    name = segment_layer(request.match_info["name"])
    version = await svc.prefs.put_layer(name, data.get("settings", {}), actor=_actor(request, data))
    return web.json_response({"layer": name, "version": version, "settings": await svc.prefs.get_layer(name)})


@requires("marketing")
async def get_layer_history(request: web.Request) -> web.StreamResponse:
    """History of a layer (``default`` or ``segment:<name>``)."""
    svc = request.app[SERVICES]
    return web.json_response({"history": await svc.prefs.list_history(request.match_info["layer"])})


async def get_export(request: web.Request) -> web.StreamResponse:
    """Download an export; the signed, expiring token in the path is the credential."""
    svc = request.app[SERVICES]
    try:
        _cid, data = await svc.rights.download(request.match_info["token"])
    except PreferenceError as exc:
        return error(exc.status, exc.code, exc.message)
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="my-data.zip"', "Cache-Control": "no-store"},
    )


async def get_notice(request: web.Request) -> web.StreamResponse:
    """The data-usage notice (``?lang=zh|en``)."""
    svc = request.app[SERVICES]
    lang = request.query.get("lang", "zh")
    return web.json_response({"language": lang, "text": svc.rights.notice(lang if lang in ("zh", "en") else "zh")})


async def get_openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi())


P = "/api/preferences"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", P + "/customers/{cid}", get_customer),
    ("PUT", P + "/customers/{cid}", put_customer),
    ("PATCH", P + "/customers/{cid}", patch_customer),
    ("GET", P + "/customers/{cid}/history", get_history),
    ("POST", P + "/customers/{cid}/rollback", post_rollback),
    ("GET", P + "/customers/{cid}/consents", get_consents),
    ("POST", P + "/customers/{cid}/consents", post_consent),
    ("POST", P + "/customers/{cid}/export", post_export),
    ("POST", P + "/customers/{cid}/erasure", post_erasure),
    ("POST", P + "/customers/{cid}/erasure/confirm", post_erasure_confirm),
    ("POST", P + "/notify", post_notify),
    ("GET", P + "/layers", get_layers),
    ("PUT", P + "/defaults", put_default),
    ("PUT", P + "/segments/{name}", put_segment),
    ("GET", P + "/layers/{layer}/history", get_layer_history),
    ("GET", P + "/exports/{token}", get_export),
    ("GET", P + "/notice", get_notice),
    ("GET", "/api/openapi.json", get_openapi),
]


def openapi() -> dict[str, Any]:
    """An OpenAPI 3.0 description of the routes above (built from the route table)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in ROUTES:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        op: dict[str, Any] = {
            "summary": (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else handler.__name__,
            "operationId": handler.__name__,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "4XX": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        scope = getattr(handler, "scope", None)
        if scope:
            op["security"] = [{"bearer": [scope]}]
            op["x-scope"] = scope
        if method in ("PUT", "PATCH", "POST"):
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Kefu preferences and notifications", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
                        }
                    },
                }
            },
        },
    }


def setup(app: web.Application, role: str = "all", *, clock: Clock | None = None) -> None:
    """Mount the API and build the preferences services with the gateway's runtime.

    Append after the runtime's cleanup context and before the background one, so the
    give-up hook is registered before any outbox sender starts.
    """
    if role in ("all", "web"):
        for method, path, handler in ROUTES:
            app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_services_ctx(role, clock or SystemClock()))


def _services_ctx(role: str, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from bot.app import public_url  # here: bot.app imports this module

        rt = app[RUNTIME]
        section = rt.settings.section("preferences")
        db = rt.store.db
        prefs = PreferenceStore(db, clock, redis=rt.redis)
        await prefs.ensure_indexes()
        override = section.get("templates_dir")
        renderer = await asyncio.to_thread(Renderer, Path(override) if override else None)
        defaults: dict[str, str] = dict(section.get("accounts") or {})
        for name, account in rt.channels:
            defaults.setdefault(name, account)  # first configured account of each channel
        engine = NotificationEngine(
            db, rt.redis, rt.outbox, prefs, renderer, clock=clock, message_store=rt.store,
            channel_ok=lambda n, a: rt.channel(n, a) is not None, default_accounts=defaults,
        )
        await engine.ensure_indexes()
        secret = section.get("link_secret")
        pipeline = rt.settings.pipeline
        rights = DataRights(
            db, rt.redis, prefs, engine, secret=str(secret).encode() if secret else None, public_url=str(section.get("public_url") or public_url(rt.settings)),
            clock=clock, mask_fields=section.get("mask_fields") or ("phone", "mobile", "tel", "telephone", "id_number", "id_card"),
            streams=(pipeline.inbound_stream, pipeline.outbox_stream), link_ttl_s=float(section.get("link_ttl_s", 72 * 3600)),
        )
        app[SERVICES] = Services(prefs, engine, rights, app[API_KEYS])
        rt.outbox.add_give_up_hook(engine.on_give_up)
        # After an open form (its questions come first), before everything else.
        rt.dispatcher.add_group(build_skills(prefs, rights, rt.redis, renderer), after="repair_report")
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if role in ("all", "worker"):
            interval = float(section.get("due_interval_s", 1.0))
            tasks.append(asyncio.create_task(_repeat(_due_step(engine), stop, interval, "due-list run"), name="prefs-due"))
            tasks.append(
                asyncio.create_task(_repeat(lambda: _settle_step(engine), stop, interval, "digest settle"), name="prefs-settle")
            )
            tasks.append(
                asyncio.create_task(
                    _repeat(lambda: rights.send_requested(rt.outbox.is_handled), stop, 0.2, "data exports"), name="prefs-exports"
                )
            )
        log.info("preferences ready on %s (role %s)", socket.gethostname(), role)
        yield
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return ctx


async def _repeat(step: Callable[[], Awaitable[bool]], stop: asyncio.Event, interval_s: float, what: str) -> None:
    """Run ``step`` until ``stop``: again at once while it says there is more to do,
    otherwise after ``interval_s``. A failing step is logged and retried."""
    while not stop.is_set():
        try:
            if await step():
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("preferences %s failed", what)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass


def _due_step(engine: NotificationEngine) -> Callable[[], Awaitable[bool]]:
    synced = False

    async def step() -> bool:
        nonlocal synced
        if not synced:  # in the loop, not at startup: Redis or MongoDB may be down
            await engine.resync()
            synced = True
        await engine.run_all_due(settle=False)  # the settle task follows behind
        return False

    return step


async def _settle_step(engine: NotificationEngine) -> bool:
    # Its own task, a batch at a time: settling one takes seconds on the embedded store,
    # and held messages and the next digests must not wait behind it.
    return bool(await engine.settle(limit=1))
