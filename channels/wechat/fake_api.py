"""A small fake of the WeChat API, for tests, benchmarks and ``kefu simulate``.

It serves ``stable_token``, customer-service sends, media upload and download, checks
access tokens like WeChat does (errcode 40001 for a stale one), records every send, and
can be told to fail the next calls (HTTP 500, errcode 45015, ...) so the outbox's
retries and dead letters can be exercised against a real HTTP exchange.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class _Failure:
    status: int = 500
    errcode: int = 0
    delay_s: float = 0.0


class FakeWeChatAPI:
    def __init__(self, *, secrets: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        self.secrets = secrets or {}  # app_id -> secret; empty accepts any
        self.latency_s = latency_s
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, bytes] = {}
        self.token_calls = 0
        self.send_calls = 0
        self._token_seq = itertools.count(1)
        self._valid_tokens: set[str] = set()
        self._current: dict[str, str] = {}
        self._failures: deque[_Failure] = deque()
        self._media_seq = itertools.count(1)
        self._sent_event = asyncio.Event()

    # -- control ----------------------------------------------------------------------
    def fail_next(self, times: int = 1, *, status: int = 500, errcode: int = 0, delay_s: float = 0.0) -> None:
        """Make the next ``times`` send calls fail with an HTTP status or an errcode."""
        self._failures.extend(_Failure(status, errcode, delay_s) for _ in range(times))

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as WeChat does when a token is refreshed elsewhere."""
        self._valid_tokens.clear()
        self._current.clear()

    def add_media(self, content: bytes, media_id: str | None = None) -> str:
        media_id = media_id or f"media-{next(self._media_seq)}"
        self.media[media_id] = content
        return media_id

    def sent_to(self, touser: str) -> list[dict[str, Any]]:
        return [s for s in self.sent if s.get("touser") == touser]

    async def wait_sent(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages were sent in total."""
        async def _wait() -> None:
            while len(self.sent) < count:
                self._sent_event.clear()
                await self._sent_event.wait()

        await asyncio.wait_for(_wait(), timeout_s)
        return self.sent

    # -- HTTP ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/cgi-bin/stable_token", self._stable_token),
                web.post("/cgi-bin/message/custom/send", self._custom_send),
                web.get("/cgi-bin/media/get", self._media_get),
                web.post("/cgi-bin/media/upload", self._media_upload),
                web.get("/_sent", self._list_sent),
            ]
        )
        return app

    async def _stable_token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        body = await request.json()
        app_id = str(body.get("appid", ""))
        expected = self.secrets.get(app_id)
        if self.secrets and (expected is None or expected != body.get("secret")):
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        if body.get("force_refresh") or app_id not in self._current:
            token = f"TOKEN-{app_id}-{next(self._token_seq)}"
            self._current[app_id] = token
            self._valid_tokens.add(token)
        return web.json_response({"access_token": self._current[app_id], "expires_in": 7200})

    def _token_ok(self, request: web.Request) -> bool:
        return request.query.get("access_token", "") in self._valid_tokens

    async def _custom_send(self, request: web.Request) -> web.Response:
        self.send_calls += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self._failures:
            failure = self._failures.popleft()
            if failure.delay_s:
                await asyncio.sleep(failure.delay_s)
            if failure.errcode:
                return web.json_response({"errcode": failure.errcode, "errmsg": "injected failure"})
            return web.Response(status=failure.status, text="injected failure")
        if not self._token_ok(request):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        payload = await request.json()
        self.sent.append(payload)
        self._sent_event.set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _media_get(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        content = self.media.get(request.query.get("media_id", ""))
        if content is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        return web.Response(body=content, content_type="audio/amr")

    async def _media_upload(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        reader = await request.multipart()
        part = await reader.next()
        if part is None or isinstance(part, type(reader)):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        content = await part.read()  # type: ignore[union-attr]
        media_id = self.add_media(bytes(content))
        return web.json_response({"type": request.query.get("type", ""), "media_id": media_id, "created_at": 0})

    async def _list_sent(self, request: web.Request) -> web.Response:
        touser = request.query.get("touser")
        sent = self.sent_to(touser) if touser else self.sent
        return web.Response(text=json.dumps(sent, ensure_ascii=False), content_type="application/json")
