"""A small fake of the WeChat service-account API, for tests, benchmarks and ``kefu simulate``.

On the shared core of :mod:`channels.fake_tencent` (tokens, media, failure injection,
the record of sends) it serves ``stable_token`` and customer-service sends, and answers
a stale token with errcode 40001 as WeChat does.
"""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web

from channels.fake_tencent import FakeTencentAPI


class FakeWeChatAPI(FakeTencentAPI):
    SEND_PATH: ClassVar[str] = "/cgi-bin/message/custom/send"
    INVALID_TOKEN: ClassVar[tuple[int, str]] = (40001, "invalid credential, access_token is invalid")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/cgi-bin/stable_token", self._stable_token),
            web.post(self.SEND_PATH, self._custom_send),
            *super().routes(),
        ]

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
