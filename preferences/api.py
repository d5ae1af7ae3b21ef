"""REST API for the CRM and marketers: customers' settings, consents, notifications,
data rights and the marketers' layers, mounted on the gateway's ``/api`` sub-app.

Keys and scopes are checked by :mod:`bot.api`'s middleware: ``prefs:read``,
``prefs:write``, ``notify``, ``data:export``, ``data:erase``, ``marketing``. The OpenAPI
document is served at ``/api/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.api import Handler, json_body, public, requires
from preferences.errors import InvalidPreference
from preferences.openapi import openapi
from preferences.services import SERVICES, PreferenceServices
from preferences.store import DEFAULT_LAYER, segment_layer


def _actor(request: web.Request, data: Mapping[str, Any]) -> str:
    return str(data.get("actor") or "api")


def _via(data: Mapping[str, Any]) -> str:
    return str(data.get("via") or "api")


async def _customer_view(svc: PreferenceServices, cid: str) -> dict[str, Any]:
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
    svc = request.config_dict[SERVICES]
    return web.json_response(await _customer_view(svc, request.match_info["cid"]))


@requires("prefs:write")
async def put_customer(request: web.Request) -> web.StreamResponse:
    """Create the customer or replace their own settings layer (body: settings, profile, segments)."""
    svc = request.config_dict[SERVICES]
    cid = request.match_info["cid"]
    data = await json_body(request)
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
    svc = request.config_dict[SERVICES]
    cid = request.match_info["cid"]
    data = await json_body(request)
    await svc.prefs.change(cid, data.get("settings", {}), actor=_actor(request, data), via=_via(data))
    return web.json_response(await _customer_view(svc, cid))


@requires("prefs:read")
async def get_history(request: web.Request) -> web.StreamResponse:
    """Every change of the customer's settings: version, who, when, via, old -> new."""
    svc = request.config_dict[SERVICES]
    cid = request.match_info["cid"]
    await svc.prefs.get(cid)
    return web.json_response({"customer_id": cid, "history": await svc.prefs.list_history(cid)})


@requires("prefs:write")
async def post_rollback(request: web.Request) -> web.StreamResponse:
    """Restore the settings as they were right after ``version`` (recorded as a new version)."""
    svc = request.config_dict[SERVICES]
    cid = request.match_info["cid"]
    data = await json_body(request)
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidPreference("version: expected an integer", field="version")
    await svc.prefs.get(cid)
    new = await svc.prefs.rollback(cid, version, actor=_actor(request, data), via=_via(data))
    return web.json_response({**await _customer_view(svc, cid), "version": new})


@requires("prefs:write")
async def post_consent(request: web.Request) -> web.StreamResponse:
    """Record consent given or withdrawn (body: scope, granted, evidence)."""
    svc = request.config_dict[SERVICES]
    data = await json_body(request)
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
    svc = request.config_dict[SERVICES]
    cid = request.match_info["cid"]
    await svc.prefs.get(cid)
    return web.json_response({"customer_id": cid, "consents": await svc.prefs.list_consents(cid)})


@requires("notify")
async def post_notify(request: web.Request) -> web.StreamResponse:
    """Notify a customer (body: customer_id, topic, importance, data, key)."""
    svc = request.config_dict[SERVICES]
    data = await json_body(request)
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
    svc = request.config_dict[SERVICES]
    export_id, url = await svc.rights.export_my_data(request.match_info["cid"], via="api")
    return web.json_response({"export_id": export_id, "url": url}, status=202)


@requires("data:erase")
async def post_erasure(request: web.Request) -> web.StreamResponse:
    """Start an erasure: returns the confirmation code the confirm call needs (15 min)."""
    svc = request.config_dict[SERVICES]
    code = await svc.rights.request_erasure(request.match_info["cid"])
    return web.json_response({"confirmation": code, "expires_in": 900}, status=202)


@requires("data:erase")
async def post_erasure_confirm(request: web.Request) -> web.StreamResponse:
    """Erase the customer's data (body: confirmation); returns the audit record."""
    svc = request.config_dict[SERVICES]
    data = await json_body(request)
    audit = await svc.rights.confirm_erasure(
        request.match_info["cid"], str(data.get("confirmation", "")), actor=_actor(request, data), via=_via(data)
    )
    return web.json_response(audit)


@requires("marketing")
async def get_layers(request: web.Request) -> web.StreamResponse:
    """The marketers' global default and segment layers."""
    svc = request.config_dict[SERVICES]
    return web.json_response({"layers": await svc.prefs.list_layers()})


@requires("marketing")
async def put_default(request: web.Request) -> web.StreamResponse:
    """Replace the global default layer (body: settings)."""
    svc = request.config_dict[SERVICES]
    data = await json_body(request)
    version = await svc.prefs.put_layer(DEFAULT_LAYER, data.get("settings", {}), actor=_actor(request, data))
    return web.json_response({"layer": DEFAULT_LAYER, "version": version, "settings": await svc.prefs.get_layer(DEFAULT_LAYER)})


@requires("marketing")
async def put_segment(request: web.Request) -> web.StreamResponse:
    """Replace one segment's layer (body: settings); customers join via their ``segments``."""
    svc = request.config_dict[SERVICES]
    data = await json_body(request)
    name = segment_layer(request.match_info["name"])
    version = await svc.prefs.put_layer(name, data.get("settings", {}), actor=_actor(request, data))
    return web.json_response({"layer": name, "version": version, "settings": await svc.prefs.get_layer(name)})


@requires("marketing")
async def get_layer_history(request: web.Request) -> web.StreamResponse:
    """History of a layer (``default`` or ``segment:<name>``)."""
    svc = request.config_dict[SERVICES]
    return web.json_response({"history": await svc.prefs.list_history(request.match_info["layer"])})


@public
async def get_export(request: web.Request) -> web.StreamResponse:
    """Download an export; the signed, expiring token in the path is the credential."""
    svc = request.config_dict[SERVICES]
    _cid, data = await svc.rights.download(request.match_info["token"])
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="my-data.zip"', "Cache-Control": "no-store"},
    )


@public
async def get_notice(request: web.Request) -> web.StreamResponse:
    """The data-usage notice (``?lang=zh|en``)."""
    svc = request.config_dict[SERVICES]
    lang = request.query.get("lang", "zh")
    return web.json_response({"language": lang, "text": svc.rights.notice(lang if lang in ("zh", "en") else "zh")})


@public
async def get_openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi(ROUTES, prefix="/api"))


P = "/preferences"
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
    ("GET", "/openapi.json", get_openapi),
]


def routes() -> list[web.RouteDef]:
    """The preferences endpoints, relative to ``/api``."""
    return [web.route(method, path, handler) for method, path, handler in ROUTES]
