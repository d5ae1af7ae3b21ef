"""The shared core of the fake Tencent APIs (WeChat service account, WeCom, WeCom KF).

For tests, benchmarks and ``kefu simulate``: it issues and checks access tokens, records
every send, serves media upload and download, lists sends at ``/_sent``, and can be
told to fail the next calls of a path (HTTP 500, an errcode, a delay) so retries, token
refreshes and dead letters run against a real HTTP exchange. Each platform's fake adds
its token endpoint and send API.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler


@dataclass
class Failure:
    status: int = 500
    errcode: int = 0
    delay_s: float = 0.0


class FakeTencentAPI:
    SEND_PATH: ClassVar[str]
    # What the platform answers for an unknown or revoked access token.
    INVALID_TOKEN: ClassVar[tuple[int, str]] = (40014, "invalid access_token")

    def __init__(self, *, secrets: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        self.secrets = secrets or {}  # app or corp id -> secret; empty accepts any
        self.latency_s = latency_s
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, bytes] = {}
        self.token_calls = 0
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._token_seq = itertools.count(1)
        self._valid_tokens: set[str] = set()
        self._current: dict[Any, str] = {}
        # Per path: None lets a call through, a Failure fails it (see fail_next's after).
        self._failures: defaultdict[str, deque[Failure | None]] = defaultdict(deque)
        self._media_seq = itertools.count(1)
        self._sent_event = asyncio.Event()
        self._handling: set[asyncio.Future[web.StreamResponse]] = set()

    @property
    def send_calls(self) -> int:
        return self.calls[self.SEND_PATH]

    # -- control ----------------------------------------------------------------------
    def fail_next(
        self,
        times: int = 1,
        *,
        path: str | None = None,
        after: int = 0,
        status: int = 500,
        errcode: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        """Make ``times`` calls of ``path`` (default: the send API) fail, after ``after`` pass."""
        queue = self._failures[path or self.SEND_PATH]
        queue.extend([None] * after)
        queue.extend(Failure(status, errcode, delay_s) for _ in range(times))

    def clear_failures(self) -> None:
        """Forget failures not yet used: the platform is healthy again."""
        self._failures.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as when a token is refreshed elsewhere."""
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
        app = web.Application(middlewares=[self._finish_what_was_received])
        app.add_routes(self.routes())
        return app

    @web.middleware
    async def _finish_what_was_received(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # A platform does not drop a request because its caller hung up (a test server
        # cancels the handler then): the work runs to the end in a task of its own.
        task = asyncio.ensure_future(handler(request))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        return await asyncio.shield(task)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cgi-bin/media/get", self._media_get),
            web.post("/cgi-bin/media/upload", self._media_upload),
            web.get("/_sent", self._list_sent),
        ]

    def api_path(self, request: web.Request) -> str:
        """The API path without the prefix a gateway mounts the fake under (/_sim/...)."""
        for route in self.routes():
            if request.path.endswith(route.path):
                return route.path
        return request.path

    def issue_token(self, key: Any, *, force: bool = False) -> str:
        """The current token for ``key`` (an app or a corp+secret), new if none or forced."""
        if force or key not in self._current:
            token = f"TOKEN-{key if isinstance(key, str) else key[0]}-{next(self._token_seq)}"
            self._current[key] = token
            self._valid_tokens.add(token)
        return self._current[key]

    async def guard(self, request: web.Request) -> web.Response | None:
        """Latency, injected failures and the token check every API call goes through."""
        path = self.api_path(request)
        self.calls[path] += 1
        # The whole request is in before the platform takes its time: a caller that dies
        # while waiting for the answer has still delivered the message, as with WeChat.
        if not request.content_type.startswith("multipart/"):  # uploads stream their parts
            await request.read()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        queue = self._failures.get(path)
        failure = queue.popleft() if queue else None
        if failure is not None:
            if failure.delay_s:
                await asyncio.sleep(failure.delay_s)
            if failure.errcode:
                return web.json_response({"errcode": failure.errcode, "errmsg": "injected failure"})
            return web.Response(status=failure.status, text="injected failure")
        if request.query.get("access_token", "") not in self._valid_tokens:
            errcode, errmsg = self.INVALID_TOKEN
            return web.json_response({"errcode": errcode, "errmsg": errmsg})
        return None

    def record_send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)
        self._sent_event.set()

    async def _media_get(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        content = self.media.get(request.query.get("media_id", ""))
        if content is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        return web.Response(body=content, content_type="audio/amr")

    async def _media_upload(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader):
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        content = await part.read()
        media_id = self.add_media(bytes(content))
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": request.query.get("type", ""), "media_id": media_id})

    async def _list_sent(self, request: web.Request) -> web.Response:
        touser = request.query.get("touser")
        sent = self.sent_to(touser) if touser else self.sent
        return web.Response(text=json.dumps(sent, ensure_ascii=False), content_type="application/json")
