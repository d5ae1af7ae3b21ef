"""Sign-in, sessions, rate limits, sign-out, password change, CSRF."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from admin.deps import ConsoleSettings
from admin.roles import Role
from admin.sessions import CONSOLE_SESSIONS
from bot.errors import ConfigError
from tests.console.conftest import PASSWORD, ConsoleRig, make_rig


async def test_sign_in_issues_a_new_session_and_sign_out_ends_it(rig: ConsoleRig) -> None:
    await rig.console.users.create("alice", Role.AGENT, PASSWORD)
    alice = await rig.person()
    resp = await alice.http.get(rig.base + "/admin/inbox", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/admin/signin")
    await alice.http.get(rig.base + "/admin/signin")
    anonymous = alice.http.cookie_jar.filter_cookies(rig.server.make_url("/admin/"))[CONSOLE_SESSIONS.cookie].value
    resp = await alice.sign_in("alice")
    assert resp.status == 303
    cookie = alice.http.cookie_jar.filter_cookies(rig.server.make_url("/admin/"))[CONSOLE_SESSIONS.cookie]
    assert cookie.value != anonymous  # a fresh id at sign-in: no session fixation
    raw = resp.headers.getall("Set-Cookie")[0]
    assert "HttpOnly" in raw and "SameSite=Lax" in raw and "Path=/admin" in raw
    assert "Secure" not in raw  # plain http here; Secure when served over https
    assert (await alice.get("/admin/inbox")).status == 200
    resp = await alice.post("/admin/signout")
    assert resp.status == 303
    # The old cookie no longer opens anything, even if someone kept a copy.
    replay = await rig.person()
    replay.http.cookie_jar.update_cookies({CONSOLE_SESSIONS.cookie: cookie.value}, rig.server.make_url("/admin/"))
    assert (await replay.get("/admin/inbox")).status == 303


async def test_wrong_password_then_rate_limit_with_a_clear_message(rig: ConsoleRig) -> None:
    await rig.console.users.create("bob", Role.AGENT, PASSWORD)
    bob = await rig.person()
    for _ in range(5):
        resp = await bob.sign_in("bob", "not the password")
        assert resp.status == 401
        assert "Wrong user name or password" in await resp.text() or "用户名或密码不正确" in await resp.text()
    resp = await bob.sign_in("bob", PASSWORD)  # even the right password now waits
    assert resp.status == 429
    assert "15 分钟" in await resp.text()
    # Unknown names are limited the same way and say nothing about whether they exist.
    resp = await bob.sign_in("nobody", PASSWORD)
    assert resp.status == 401


async def test_sign_in_without_csrf_token_is_refused(rig: ConsoleRig) -> None:
    await rig.console.users.create("carol", Role.ADMIN, PASSWORD)
    carol = await rig.person()
    await carol.http.get(rig.base + "/admin/signin")
    resp = await carol.post("/admin/signin", {"name": "carol", "password": PASSWORD}, csrf=False)
    assert resp.status == 403
    assert (await carol.get("/admin/users")).status == 303  # still signed out


async def test_password_change_needs_the_current_one(rig: ConsoleRig) -> None:
    dave = await rig.person("dave")
    elsewhere = await rig.person("dave")  # signed in on a second device
    resp = await dave.post("/admin/account/password", {"current": "wrong one!!", "new": "a new secret 123", "repeat": "a new secret 123"})
    assert resp.status == 303
    assert await rig.console.users.authenticate("dave", PASSWORD) is not None
    resp = await dave.post("/admin/account/password", {"current": PASSWORD, "new": "a new secret 123", "repeat": "a new secret 123"})
    assert resp.status == 303
    await dave.get("/admin/account")
    assert await rig.console.users.authenticate("dave", "a new secret 123") is not None
    assert (await elsewhere.get("/admin/account")).status == 303  # the other session ended
    ada = await rig.person("ada", Role.ADMIN)
    assert (await ada.post("/admin/users/dave/password", {"password": "the admin's choice"})).status == 303
    assert (await dave.get("/admin/account")).status == 303  # an admin's reset signs dave out too
    assert await rig.console.users.authenticate("dave", PASSWORD) is None
    stored = await rig.console.users.users.find_one({"_id": "dave"})
    assert stored is not None and stored["password"].startswith("$argon2id$")
    entries = await rig.console.audit.recent(target="dave")
    assert [e.action for e in entries] == ["user.reset_password", "user.password"] and entries[1].after == "***"


async def test_language_and_time_zone_are_per_user(rig: ConsoleRig) -> None:
    erin = await rig.person("erin")
    assert "待接入" in await (await erin.get("/admin/inbox")).text()
    resp = await erin.post("/admin/account/preferences", {"language": "en", "time_zone": "Europe/London", "next": "/admin/inbox"})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/inbox"
    page = await (await erin.get("/admin/inbox")).text()
    assert "Waiting for a person" in page and "待接入" not in page
    resp = await erin.post("/admin/account/preferences", {"language": "en", "time_zone": "Mars/Olympus"})
    assert resp.status == 303
    user = await rig.console.users.get("erin")
    assert user is not None and user.time_zone == "Europe/London"


async def test_secure_cookies_when_configured(redis: Any, aiohttp_client: Any, fake_wechat: Any, redis_url: str, mongo_url: str) -> None:
    rig = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, console={"secure_cookies": True})
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.base + "/admin/signin") as resp:
            raw = resp.headers["Set-Cookie"]
    assert "Secure" in raw and "HttpOnly" in raw


def test_console_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        ConsoleSettings.from_section({"sesion_ttl_s": 5}, public_url="")
    with pytest.raises(ConfigError, match="time zone"):
        ConsoleSettings.from_section({"time_zone": "Mars/Base"}, public_url="")
    settings = ConsoleSettings.from_section({"signin_per_user": 3}, public_url="https://kefu.example.com/")
    assert settings.signin.per_user == 3 and settings.public_url == "https://kefu.example.com"
