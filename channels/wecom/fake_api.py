"""A small fake of the WeCom server API, for tests, benchmarks and ``kefu simulate``.

It serves ``gettoken``, app-message sends, media upload and download, checks access
tokens like WeCom does (errcode 40014 for an unknown one), records every send, and can
be told to fail the next calls of a path (HTTP 500, an errcode, a delay) so retries,
token refreshes and dead letters run against a real HTTP exchange.
:class:`channels.wecom_kf.fake_api.FakeWeComKfAPI` adds WeCom KF's endpoints.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar

from aiohttp import web

from channels.fake_tencent import FakeTencentAPI


class FakeWeComAPI(FakeTencentAPI):
    SEND_PATH: ClassVar[str] = "/cgi-bin/message/send"

    def __init__(self, *, secrets: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        super().__init__(secrets=secrets, latency_s=latency_s)
        # Users WeCom would list in "invaliduser" (left the corp, outside the app's range).
        self.invalid_users: set[str] = set()
        # enable_duplicate_check: the request JSON -> when WeCom last took it.
        self._recent: dict[str, float] = {}
        self.duplicates_dropped = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cgi-bin/gettoken", self._gettoken),
            web.post("/cgi-bin/message/send", self._message_send),
            *super().routes(),
        ]

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        corp_id = request.query.get("corpid", "")
        secret = request.query.get("corpsecret", "")
        expected = self.secrets.get(corp_id)
        if self.secrets and (expected is None or expected != secret):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = self.issue_token((corp_id, secret))
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _message_send(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        payload = await request.json()
        if not payload.get("touser") or "agentid" not in payload or payload.get("msgtype") not in payload:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message"})
        if payload["touser"] in self.invalid_users:
            # WeCom's way: success, with the recipient listed as invalid.
            return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": payload["touser"]})
        if payload.get("enable_duplicate_check") == 1:
            # WeCom's rule: the same request within the interval is taken but not delivered.
            key = json.dumps(payload, sort_keys=True, ensure_ascii=False)
            now = time.monotonic()
            interval = float(payload.get("duplicate_check_interval") or 1800)
            if now - self._recent.get(key, -interval) < interval:
                self.duplicates_dropped += 1
                return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": "duplicate"})
            self._recent[key] = now
        self.record_send(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"msg-{len(self.sent)}"})
