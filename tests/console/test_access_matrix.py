"""Role x route: every console and /api route, and who gets what.

The tables below are written out by hand, on purpose, rather than read from the code:
a route added without a line here fails ``test_every_route_has_an_entry``, and a line
that disagrees with the code fails the matrix.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from admin.roles import Role
from bot.apikeys import SCOPES
from channels.wechat.fake_api import FakeWeChatAPI
from tests.console.conftest import CSRF_FIELD, Browserless, ConsoleRig, make_rig

ADMIN, AGENT, MARKETER, TRAINER = "admin", "agent", "marketer", "trainer"
EVERYONE = {ADMIN, AGENT, MARKETER, TRAINER}
STAFF = {ADMIN, AGENT}
MARKETING = {ADMIN, MARKETER}  # the marketers' workspace: never an agent's, never conversation contents
TRAINING = {ADMIN, TRAINER}  # the trainer's pages: missed questions and their labels, never whole conversations
OPEN = None  # anyone, signed in or not

CONSOLE: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/admin/signin"): OPEN,
    ("POST", "/admin/signin"): OPEN,
    ("GET", "/admin/static/{name}"): OPEN,
    ("POST", "/admin/signout"): EVERYONE,
    ("GET", "/admin/"): EVERYONE,
    ("GET", "/admin/account"): EVERYONE,
    ("POST", "/admin/account/password"): EVERYONE,
    ("POST", "/admin/account/preferences"): EVERYONE,
    ("GET", "/admin/inbox"): STAFF,
    ("GET", "/admin/events"): STAFF,
    ("GET", "/admin/search"): STAFF,
    ("GET", "/admin/conversations/{cid}"): STAFF,
    ("POST", "/admin/conversations/{cid}/claim"): STAFF,
    ("POST", "/admin/conversations/{cid}/reply"): STAFF,
    ("POST", "/admin/conversations/{cid}/note"): STAFF,
    ("POST", "/admin/conversations/{cid}/transfer"): STAFF,
    ("POST", "/admin/conversations/{cid}/handback"): STAFF,
    ("POST", "/admin/conversations/{cid}/close"): STAFF,
    ("GET", "/admin/messages/{mid}/media"): STAFF,
    ("GET", "/admin/outbox"): STAFF,
    ("POST", "/admin/outbox/{rid}/retry"): STAFF,
    ("POST", "/admin/outbox/{rid}/discard"): STAFF,
    ("GET", "/admin/users"): {ADMIN},
    ("POST", "/admin/users"): {ADMIN},
    ("POST", "/admin/users/{name}"): {ADMIN},
    ("POST", "/admin/users/{name}/password"): {ADMIN},
    ("GET", "/admin/audit"): {ADMIN},
    ("GET", "/admin/canned"): {ADMIN},
    ("POST", "/admin/canned"): {ADMIN},
    ("POST", "/admin/canned/{rid}"): {ADMIN},
    ("POST", "/admin/canned/{rid}/delete"): {ADMIN},
    ("GET", "/admin/channels"): {ADMIN},
    ("GET", "/admin/apikeys"): {ADMIN},
    ("POST", "/admin/apikeys"): {ADMIN},
    ("POST", "/admin/apikeys/{kid}/revoke"): {ADMIN},
    ("GET", "/admin/marketing/customers"): MARKETING,
    ("GET", "/admin/marketing/customers/{cid}"): MARKETING,
    ("POST", "/admin/marketing/customers/{cid}/revert"): MARKETING,
    ("POST", "/admin/marketing/customers/{cid}/segments"): MARKETING,
    ("GET", "/admin/marketing/layers"): MARKETING,
    ("POST", "/admin/marketing/layers/{layer}"): MARKETING,
    ("POST", "/admin/marketing/layers/{layer}/preview"): MARKETING,
    ("POST", "/admin/marketing/layers/{layer}/rollback"): MARKETING,
    ("GET", "/admin/marketing/templates"): MARKETING,
    ("GET", "/admin/marketing/templates/edit"): MARKETING,
    ("GET", "/admin/marketing/templates/diff"): MARKETING,
    ("POST", "/admin/marketing/templates/preview"): MARKETING,
    ("POST", "/admin/marketing/templates/save"): MARKETING,
    ("POST", "/admin/marketing/templates/rollback"): MARKETING,
    ("GET", "/admin/marketing/rules"): MARKETING,
    ("POST", "/admin/marketing/rules/validate"): MARKETING,
    ("GET", "/admin/marketing/rules/{rule}"): MARKETING,
    ("POST", "/admin/marketing/rules/{rule}"): MARKETING,
    ("POST", "/admin/marketing/rules/{rule}/enabled"): MARKETING,
    ("POST", "/admin/marketing/rules/{rule}/restore"): MARKETING,
    ("GET", "/admin/marketing/activity"): MARKETING,
    ("GET", "/admin/marketing/activity/notifications"): MARKETING,
    ("GET", "/admin/marketing/activity/events"): MARKETING,
    ("GET", "/admin/marketing/carriers"): MARKETING,
    ("GET", "/admin/marketing/carriers/events"): MARKETING,
    ("GET", "/admin/marketing/repair"): MARKETING,
    ("GET", "/admin/marketing/repair/events"): MARKETING,
    ("GET", "/admin/marketing/data-requests"): MARKETING,
    ("GET", "/admin/marketing/data-requests/events"): MARKETING,
    ("GET", "/admin/marketing/schedule"): MARKETING,
    ("GET", "/admin/marketing/schedule/events"): MARKETING,
    ("GET", "/admin/trainer"): TRAINING,
    ("POST", "/admin/trainer/labels"): TRAINING,
    ("GET", "/admin/trainer/labels"): TRAINING,
    ("GET", "/admin/trainer/events"): TRAINING,  # the trainer pages' live updates
    ("POST", "/admin/trainer/labels/{lid}/approve"): TRAINING,
    ("POST", "/admin/trainer/labels/{lid}/revert"): TRAINING,
    ("GET", "/admin/trainer/transcripts"): TRAINING,
    ("POST", "/admin/trainer/transcripts/{mid}/review"): TRAINING,
    ("GET", "/admin/trainer/model"): TRAINING,  # the held-out gate's figures
    ("POST", "/admin/trainer/model/switch"): TRAINING,  # the switch to the model the gate passed
    ("POST", "/admin/messages/{mid}/transcript"): STAFF,  # an agent's correction, kept for the trainer
}

# Server-sent event streams: asked for as such, closed once answered.
STREAMS = {"/admin/events", "/admin/marketing/activity/events", "/admin/marketing/repair/events", "/admin/marketing/data-requests/events",
           "/admin/marketing/carriers/events", "/admin/marketing/schedule/events", "/admin/trainer/events"}

# The scope an API key needs; "public" routes authenticate otherwise (a signed
# platform request, a one-time token) or publish nothing private.
API: dict[tuple[str, str], str] = {
    ("GET", "/api/conversations/waiting"): "conversations:read",
    ("GET", "/api/conversations/{cid}"): "conversations:read",
    ("POST", "/api/conversations/{cid}/claim"): "conversations:write",
    ("POST", "/api/conversations/{cid}/reply"): "conversations:write",
    ("POST", "/api/conversations/{cid}/handback"): "conversations:write",
    ("GET", "/api/preferences/customers/{cid}"): "prefs:read",
    ("PUT", "/api/preferences/customers/{cid}"): "prefs:write",
    ("PATCH", "/api/preferences/customers/{cid}"): "prefs:write",
    ("GET", "/api/preferences/customers/{cid}/history"): "prefs:read",
    ("POST", "/api/preferences/customers/{cid}/rollback"): "prefs:write",
    ("GET", "/api/preferences/customers/{cid}/consents"): "prefs:read",
    ("POST", "/api/preferences/customers/{cid}/consents"): "prefs:write",
    ("POST", "/api/preferences/customers/{cid}/export"): "data:export",
    ("POST", "/api/preferences/customers/{cid}/erasure"): "data:erase",
    ("POST", "/api/preferences/customers/{cid}/erasure/confirm"): "data:erase",
    ("POST", "/api/preferences/notify"): "notify",
    ("GET", "/api/preferences/layers"): "marketing",
    ("PUT", "/api/preferences/defaults"): "marketing",
    ("PUT", "/api/preferences/segments/{name}"): "marketing",
    ("GET", "/api/preferences/layers/{layer}/history"): "marketing",
    ("GET", "/api/renewal/rules"): "renewal:read",
    ("PUT", "/api/renewal/rules/{rule}"): "renewal:write",
    ("DELETE", "/api/renewal/rules/{rule}"): "renewal:write",
    ("POST", "/api/renewal/scan"): "renewal:write",
    ("GET", "/api/reviews/carriers"): "reviews:read",
    ("GET", "/api/reviews"): "reviews:read",
    ("GET", "/api/repair/tickets"): "repair:read",
    ("POST", "/api/repair/tickets/{ticket}/status"): "repair:write",
    ("GET", "/api/preferences/exports/{token}"): "token",  # a one-time download token
    ("GET", "/api/preferences/notice"): "public",  # the privacy notice
    ("GET", "/api/openapi.json"): "public",
    ("POST", "/api/reviews/webhook/{marketplace}"): "signed",  # marketplace HMAC, or reviews:write
    ("GET", "/api/kb/entries"): "knowledge:read",
    ("POST", "/api/kb/entries"): "knowledge:write",
    ("GET", "/api/kb/entries/{id}"): "knowledge:read",
    ("PUT", "/api/kb/entries/{id}"): "knowledge:write",
    ("DELETE", "/api/kb/entries/{id}"): "knowledge:write",
    ("GET", "/api/kb/entries/{id}/versions"): "knowledge:read",
    ("POST", "/api/kb/search"): "knowledge:read",
    ("GET", "/api/kb/missed"): "knowledge:read",
    ("GET", "/api/kb/missed/groups"): "knowledge:read",
    ("POST", "/api/kb/labels"): "knowledge:write",
    ("GET", "/api/kb/labels"): "knowledge:read",
    ("GET", "/api/kb/containment"): "knowledge:read",
}
# What a request without any credential gets on the routes that need no API key.
# signed: refused before saying whether the marketplace is configured.
NO_KEY_STATUS = {"public": 200, "token": 403, "signed": 401}

OTHER = {  # platform webhooks (signed by the platform) and health
    ("GET", "/wechat/{account}"), ("POST", "/wechat/{account}"), ("GET", "/verify/engineer"),
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
}


def key_for(scope: str, *, without: bool = False) -> str:
    return ("kall-but-" if without else "konly-") + scope.replace(":", "-")


@pytest.fixture
async def matrix_rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Any:
    keys = [{"key": key_for(s), "scopes": [s]} for s in SCOPES]
    keys += [{"key": key_for(s, without=True), "scopes": [o for o in SCOPES if o != s]} for s in SCOPES]
    r = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, api={"keys": keys})
    yield r
    for http in r.sessions:
        await http.close()


def app_routes(rig: ConsoleRig) -> set[tuple[str, str]]:
    found = set()
    app = rig.harness.client.app
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None or route.resource.canonical.startswith("/portal/"):
            continue  # the customer portal's routes have their own matrix (tests/portal)
        found.add((route.method, route.resource.canonical))
    return found


def test_tables_do_not_overlap() -> None:
    assert not (set(CONSOLE) & set(API)) and not (set(API) & OTHER)


async def test_every_route_has_an_entry(matrix_rig: ConsoleRig) -> None:
    routes = app_routes(matrix_rig)
    missing = routes - set(CONSOLE) - set(API) - OTHER
    assert not missing, f"routes without an access entry in this test: {sorted(missing)}"
    stale = (set(CONSOLE) | set(API) | OTHER) - routes
    assert not stale, f"entries for routes that no longer exist: {sorted(stale)}"


def concrete(path: str) -> str:
    return (path.replace("{name}", "nobody").replace("{cid}", "wechat:demo:oNobody").replace("{mid}", "nothing")
            .replace("{rid}", "nothing").replace("{lid}", "nothing").replace("{kid}", "000000000000").replace("{ticket}", "T0")
            .replace("{rule}", "r0").replace("{layer}", "defaults").replace("{token}", "t0")
            .replace("{marketplace}", "nowhere").replace("{id}", "nothing").replace("{account}", "demo"))


async def test_console_role_matrix(matrix_rig: ConsoleRig) -> None:
    people: dict[str, Browserless] = {
        "anonymous": await matrix_rig.person(),
        ADMIN: await matrix_rig.person("ada", Role.ADMIN),
        AGENT: await matrix_rig.person("al", Role.AGENT),
        MARKETER: await matrix_rig.person("mo", Role.MARKETER),
        TRAINER: await matrix_rig.person("tina", Role.TRAINER),
    }
    # Sign-out last: it ends the session the other requests use. Sign-in POSTs are
    # tried in test_auth (with real and wrong passwords).
    order = sorted(CONSOLE, key=lambda r: r == ("POST", "/admin/signout"))
    for who, person in people.items():
        if who == "anonymous":
            found = CSRF_FIELD.search(await (await person.http.get(matrix_rig.base + "/admin/signin")).text())
            assert found is not None
            person.csrf = found.group(1)  # anonymous POSTs carry a valid token: refused for the role, not CSRF
        for method, path in order:
            if (method, path) == ("POST", "/admin/signin"):
                continue
            allowed = CONSOLE[(method, path)]
            url = concrete(path).replace("{name}", "x")
            if path == "/admin/static/{name}":
                url = "/admin/static/console.css"
            if method == "GET":
                resp = await person.get(url, headers={"Accept": "text/event-stream"} if path in STREAMS else {})
            else:
                resp = await person.post(url, {})
            status = resp.status
            if path in STREAMS and status == 200:
                resp.close()
            label = f"{who} {method} {path} -> {status}"
            assert status < 500, label  # junk ids and empty forms get a clear refusal, never a crash
            if allowed is OPEN:
                assert status not in (401, 403), label
            elif who == "anonymous":
                assert (status == 303 and resp.headers["Location"].startswith("/admin/signin")) if method == "GET" and path not in STREAMS else status == 401, label
            elif who in allowed:
                assert status not in (401, 403), label
            else:
                assert status == 403, label


async def test_api_scope_matrix(matrix_rig: ConsoleRig) -> None:
    admin = await matrix_rig.person("ada", Role.ADMIN)
    http = admin.http  # a signed-in console session is no API credential
    for (method, path), scope in API.items():
        url = matrix_rig.base + concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        if scope in NO_KEY_STATUS:
            async with http.request(method, url, json=body) as resp:
                assert resp.status == NO_KEY_STATUS[scope], f"{method} {path}: {resp.status}"
            continue
        async with aiohttp.ClientSession() as anon, anon.request(method, url, json=body) as resp:
            assert resp.status == 401, f"anonymous {method} {path}: {resp.status}"
        async with http.request(method, url, json=body) as resp:
            assert resp.status == 401, f"console session {method} {path}: {resp.status}"
        async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {key_for(scope, without=True)}"}) as resp:
            assert resp.status == 403, f"every scope but {scope}: {method} {path}: {resp.status}"
        async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {key_for(scope)}"}) as resp:
            assert resp.status not in (401, 403), f"{scope}: {method} {path}: {resp.status}"
