"""Admin pages: users and roles, canned replies, API keys, channels, the audit log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from admin.canned import CannedReply
from admin.roles import ADMINS, Role
from admin.state import ConsoleRoute, console, current_user
from admin.users import LANGUAGES
from bot.config import redact
from channels.base import Channel
from webui.errors import BadInput
from webui.forms import fields, one
from webui.sessions import SESSION

ChannelLookup = Callable[[str, str], Channel | None]


async def users(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return await c.pages.render(request, "users.html", users=await c.users.all(), roles=[r.value for r in Role], languages=LANGUAGES)


async def create_user(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    role = _role(one(data, "role", max_len=16))
    user = await c.users.create(one(data, "name", max_len=32).lower(), role, data.get("password", ""), language=data.get("language", "zh") if data.get("language") in LANGUAGES else "zh")
    await c.audit.record(current_user(request).name, "user.create", user.name, after=user.public())
    raise web.HTTPSeeOther("/admin/users")


async def update_user(request: web.Request) -> web.StreamResponse:
    c = console(request)
    actor = current_user(request)
    data = await fields(request)
    name = request.match_info["name"]
    changes: dict[str, Any] = {"role": _role(one(data, "role", max_len=16)).value, "disabled": data.get("disabled") == "on"}
    if name == actor.name and (changes["role"] != Role.ADMIN.value or changes["disabled"]):
        raise BadInput(c.pages.text(request, "no_self_demotion"))
    before, after = await c.users.update(name, **changes)
    await c.audit.record(actor.name, "user.update", name, before=before.public(), after=after.public())
    raise web.HTTPSeeOther("/admin/users")


async def reset_password(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    name = request.match_info["name"]
    await c.users.require(name)
    await c.users.set_password(name, data.get("password", ""))
    await c.sessions.end_all(name)
    await c.audit.record(current_user(request).name, "user.reset_password", name, before="***", after="***")
    await c.sessions.set_flash(request[SESSION], c.pages.text(request, "password_reset_done", name=name))
    raise web.HTTPSeeOther("/admin/users")


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadInput(f"role must be one of {', '.join(r.value for r in Role)}") from None


async def audit(request: web.Request) -> web.StreamResponse:
    c = console(request)
    target = request.query.get("target", "")[:256]
    return await c.pages.render(request, "audit.html", entries=await c.audit.recent(300, target=target), target=target)


async def canned(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return await c.pages.render(request, "canned.html", replies=await c.canned.all(), languages=LANGUAGES)


async def add_canned(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    reply = await c.canned.add(one(data, "language", max_len=8), one(data, "title", max_len=80), one(data, "text", max_len=2000))
    await c.audit.record(current_user(request).name, "canned.add", reply.id, after=_canned(reply))
    raise web.HTTPSeeOther("/admin/canned")


async def change_canned(request: web.Request) -> web.StreamResponse:
    c = console(request)
    data = await fields(request)
    before, after = await c.canned.change(
        request.match_info["rid"], one(data, "language", max_len=8), one(data, "title", max_len=80), one(data, "text", max_len=2000)
    )
    await c.audit.record(current_user(request).name, "canned.change", after.id, before=_canned(before), after=_canned(after))
    raise web.HTTPSeeOther("/admin/canned")


def _canned(reply: CannedReply) -> dict[str, str]:
    return {"language": reply.language, "title": reply.title, "text": reply.text}


async def remove_canned(request: web.Request) -> web.StreamResponse:
    c = console(request)
    reply = await c.canned.remove(request.match_info["rid"])
    await c.audit.record(current_user(request).name, "canned.remove", reply.id, before=_canned(reply))
    raise web.HTTPSeeOther("/admin/canned")


def channel_rows(
    settings: Mapping[str, tuple[Mapping[str, Any], ...]], lookup: ChannelLookup, public_url: str, language: str
) -> list[dict[str, Any]]:
    """Configured accounts with secrets hidden and the webhook URLs to paste into each
    platform's admin page (from the channel class's own route paths and name)."""
    rows = []
    for name, accounts in sorted(settings.items()):
        for section in accounts:
            account = str(section.get("account", ""))
            channel = lookup(name, account)
            cls = type(channel) if channel is not None else None
            rows.append({
                "channel": cls.display_name.get(language, name) if cls is not None else name,
                "account": account,
                "webhooks": [public_url + p.replace("{account}", account) for p in cls.route_paths()] if cls is not None else [],
                "settings": {k: v for k, v in redact(dict(section)).items() if k != "account"},
            })
    return rows


async def channels(request: web.Request) -> web.StreamResponse:
    c = console(request)
    rows = channel_rows(c.deps.channel_settings, c.deps.channels, c.settings.public_url, c.pages.language(request))
    return await c.pages.render(request, "channels.html", rows=rows)


async def api_keys(request: web.Request) -> web.StreamResponse:
    c = console(request)
    keys = await c.deps.api_keys.all() if c.deps.api_keys is not None else []
    return await c.pages.render(request, "apikeys.html", keys=keys, scopes=c.deps.api_scopes, created=None)


async def create_api_key(request: web.Request) -> web.StreamResponse:
    c = console(request)
    if c.deps.api_keys is None:
        raise BadInput("API keys are configured in kefu.yml on this gateway")
    form = await request.post()
    scopes = [s for s in form.getall("scopes", []) if isinstance(s, str)]
    label = form.get("label", "")
    actor = current_user(request).name
    plain, info = await c.deps.api_keys.create(label if isinstance(label, str) else "", scopes, actor)
    await c.audit.record(actor, "apikey.create", info.id, after={"label": info.label, "scopes": list(info.scopes)})
    keys = await c.deps.api_keys.all()
    # The only time the key is ever shown; the page is not cached (Cache-Control: no-store).
    return await c.pages.render(request, "apikeys.html", keys=keys, scopes=c.deps.api_scopes, created=plain)


async def revoke_api_key(request: web.Request) -> web.StreamResponse:
    c = console(request)
    if c.deps.api_keys is None:
        raise BadInput("API keys are configured in kefu.yml on this gateway")
    info = await c.deps.api_keys.revoke(request.match_info["kid"])
    await c.audit.record(current_user(request).name, "apikey.revoke", info.id, before={"label": info.label, "scopes": list(info.scopes)})
    raise web.HTTPSeeOther("/admin/apikeys")


ROUTES = (
    ConsoleRoute("GET", "/users", users, ADMINS, "users"),
    ConsoleRoute("POST", "/users", create_user, ADMINS, "user_create"),
    ConsoleRoute("POST", "/users/{name}", update_user, ADMINS, "user_update"),
    ConsoleRoute("POST", "/users/{name}/password", reset_password, ADMINS, "user_password"),
    ConsoleRoute("GET", "/audit", audit, ADMINS, "audit"),
    ConsoleRoute("GET", "/canned", canned, ADMINS, "canned"),
    ConsoleRoute("POST", "/canned", add_canned, ADMINS, "canned_add"),
    ConsoleRoute("POST", "/canned/{rid}", change_canned, ADMINS, "canned_change"),
    ConsoleRoute("POST", "/canned/{rid}/delete", remove_canned, ADMINS, "canned_remove"),
    ConsoleRoute("GET", "/channels", channels, ADMINS, "channels"),
    ConsoleRoute("GET", "/apikeys", api_keys, ADMINS, "apikeys"),
    ConsoleRoute("POST", "/apikeys", create_api_key, ADMINS, "apikey_create"),
    ConsoleRoute("POST", "/apikeys/{kid}/revoke", revoke_api_key, ADMINS, "apikey_revoke"),
)
