"""A small fake of the WeChat service-account API, for tests, benchmarks and ``kefu simulate``.

On the shared core of :mod:`channels.fake_tencent` (tokens, media, failure injection,
the record of sends) it serves ``stable_token`` and customer-service sends, and answers
a stale token with errcode 40001 as WeChat does. Web authorisation (``snsapi_base``)
signs the browser in as ``web_user``: the authorize page redirects at once with a code
that ``/sns/oauth2/access_token`` exchanges, once, for that openid.
"""

from __future__ import annotations

from secrets import token_hex
from typing import ClassVar
from urllib.parse import urlencode

from aiohttp import web

from channels.fake_tencent import FakeTencentAPI


class FakeWeChatAPI(FakeTencentAPI):
    SEND_PATH: ClassVar[str] = "/cgi-bin/message/custom/send"
    INVALID_TOKEN: ClassVar[tuple[int, str]] = (40001, "invalid credential, access_token is invalid")

    def __init__(self, *, secrets: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        super().__init__(secrets=secrets, latency_s=latency_s)
        self.web_user = ""  # the openid whose phone opens web-authorised pages
        self._codes: dict[str, str] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/cgi-bin/stable_token", self._stable_token),
            web.post(self.SEND_PATH, self._custom_send),
            web.get("/connect/oauth2/authorize", self._authorize),
            web.get("/sns/oauth2/access_token", self._web_token),
            *super().routes(),
        ]

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("scope") != "snsapi_base" or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return web.Response(status=400, text="invalid authorize request")
        code = token_hex(8)
        self._codes[code] = self.web_user
        sep = "&" if "?" in q["redirect_uri"] else "?"
        raise web.HTTPFound(q["redirect_uri"] + sep + urlencode({"code": code, "state": q.get("state", "")}))

    async def _web_token(self, request: web.Request) -> web.Response:
        q = request.query
        expected = self.secrets.get(q.get("appid", ""))
        if self.secrets and (expected is None or expected != q.get("secret")):
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        openid = self._codes.pop(q.get("code", ""), None)
        if not openid or q.get("grant_type") != "authorization_code":
            return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
        return web.json_response({"access_token": token_hex(16), "expires_in": 7200, "refresh_token": token_hex(16), "openid": openid, "scope": "snsapi_base"})

    async def _stable_token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        body = await request.json()
        app_id = str(body.get("appid", ""))
        expected = self.secrets.get(app_id)
        if self.secrets and (expected is None or expected != body.get("secret")):
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = self.issue_token(app_id, force=bool(body.get("force_refresh")))
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        payload = await request.json()
        if not payload.get("touser") or payload.get("msgtype") not in payload:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.record_send(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
