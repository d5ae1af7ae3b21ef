"""A small fake of DingTalk's open API, for tests, benchmarks and ``kefu simulate``.

Serves the app token, session webhooks, robot batch/group sends, message-file downloads,
to-do creation and the stream gateway (``connections/open`` plus a websocket that can
push robot messages and collects acks). It checks tokens like DingTalk does (HTTP 401
``InvalidAuthentication``), records every send, and can be told to fail the next calls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

TOKEN_HEADER = "x-acs-dingtalk-access-token"


@dataclass
class _Failure:
    status: int = 500
    code: str = ""
    errcode: int = 0
    delay_s: float = 0.0


class FakeDingTalkAPI:
    def __init__(self, *, secrets: dict[str, str] | None = None, latency_s: float = 0.0) -> None:
        self.secrets = secrets or {}  # appKey -> appSecret; empty accepts any
        self.latency_s = latency_s
        self.sent: list[dict[str, Any]] = []
        self.todos: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.token_calls = 0
        self.stream_opens = 0
        self.acks: list[dict[str, Any]] = []
        self.expired_sessions: set[str] = set()
        self._tokens: set[str] = set()
        self._current: dict[str, str] = {}
        self._seq = itertools.count(1)
        self._failures: deque[_Failure] = deque()
        self._sent_event = asyncio.Event()
        self._streams: list[web.WebSocketResponse] = []
        self._ack_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._stream_event = asyncio.Event()

    # -- control ----------------------------------------------------------------------
    def fail_next(self, times: int = 1, *, status: int = 500, code: str = "", errcode: int = 0, delay_s: float = 0.0) -> None:
        """Make the next ``times`` send calls (webhook or robot API) fail."""
        self._failures.extend(_Failure(status, code, errcode, delay_s) for _ in range(times))

    def revoke_tokens(self) -> None:
        self._tokens.clear()
        self._current.clear()

    def add_file(self, content: bytes, code: str | None = None) -> str:
        code = code or f"dlcode-{next(self._seq)}"
        self.files[code] = content
        return code

    def sent_where(self, **match: str) -> list[dict[str, Any]]:
        return [s for s in self.sent if all(s.get(k) == v for k, v in match.items())]

    async def wait_sent(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        async def _wait() -> None:
            while len(self.sent) < count:
                self._sent_event.clear()
                await self._sent_event.wait()

        await asyncio.wait_for(_wait(), timeout_s)
        return self.sent

    async def wait_stream(self, timeout_s: float = 10.0) -> None:
        """Wait until a gateway holds a stream connection."""
        async def _wait() -> None:
            while not self._streams:
                self._stream_event.clear()
                await self._stream_event.wait()

        await asyncio.wait_for(_wait(), timeout_s)

    async def push(self, data: dict[str, Any], *, topic: str = "/v1.0/im/bot/messages/get", timeout_s: float = 10.0) -> dict[str, Any]:
        """Deliver a callback frame over the stream as DingTalk does; return the ack."""
        await self.wait_stream(timeout_s)
        message_id = uuid.uuid4().hex
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {"appId": "fake", "connectionId": "c1", "contentType": "application/json", "messageId": message_id, "time": str(int(time.time() * 1000)), "topic": topic},
            "data": json.dumps(data, ensure_ascii=False),
        }
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack_waiters[message_id] = waiter
        await self._streams[-1].send_str(json.dumps(frame, ensure_ascii=False))
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        finally:
            self._ack_waiters.pop(message_id, None)

    async def disconnect_streams(self) -> None:
        for ws in list(self._streams):
            await ws.send_str(json.dumps({"specVersion": "1.0", "type": "SYSTEM", "headers": {"topic": "disconnect", "messageId": "d"}, "data": "{}"}))

    # -- HTTP ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/v1.0/oauth2/accessToken", self._access_token),
                web.post("/robot/sendBySession", self._send_by_session),
                web.post("/v1.0/robot/oToMessages/batchSend", self._batch_send),
                web.post("/v1.0/robot/groupMessages/send", self._group_send),
                web.post("/v1.0/robot/messageFiles/download", self._download),
                web.get("/_files/{code}", self._file),
                web.post("/_files", self._file_upload),
                web.post("/v1.0/todo/users/{union_id}/tasks", self._todo),
                web.post("/v1.0/gateway/connections/open", self._open_connection),
                web.get("/_stream", self._stream),
                web.post("/_stream/push", self._push),
                web.get("/_sent", self._list_sent),
            ]
        )
        # aiohttp waits for open websocket handlers on shutdown; close them (its docs'
        # on_shutdown pattern) so a fake stopped under a connected gateway stops at once.
        app.on_shutdown.append(self._close_streams)
        return app

    async def _close_streams(self, app: web.Application) -> None:
        for ws in list(self._streams):
            await ws.close(code=1001, message=b"server shutdown")

    async def _access_token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        body = await request.json()
        key = str(body.get("appKey", ""))
        if self.secrets and self.secrets.get(key) != body.get("appSecret"):
            return web.json_response({"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"}, status=400)
        if key not in self._current:
            token = f"dt-token-{key}-{next(self._seq)}"
            self._current[key] = token
            self._tokens.add(token)
        return web.json_response({"accessToken": self._current[key], "expireIn": 7200})

    async def _injected(self, *, webhook: bool) -> web.Response | None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if not self._failures:
            return None
        failure = self._failures.popleft()
        if failure.delay_s:
            await asyncio.sleep(failure.delay_s)
        if webhook and failure.errcode:
            return web.json_response({"errcode": failure.errcode, "errmsg": "injected failure"})
        if failure.code:
            return web.json_response({"code": failure.code, "message": "injected failure"}, status=failure.status)
        return web.Response(status=failure.status, text="injected failure")

    def _token_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get(TOKEN_HEADER, "") in self._tokens:
            return None
        return web.json_response({"code": "InvalidAuthentication", "message": "不合法的access_token"}, status=401)

    def _record(self, entry: dict[str, Any]) -> web.Response:
        self.sent.append(entry)
        self._sent_event.set()
        return web.json_response({"processQueryKey": f"pqk-{next(self._seq)}"})

    async def _send_by_session(self, request: web.Request) -> web.Response:
        if (failed := await self._injected(webhook=True)) is not None:
            return failed
        session = request.query.get("session", "")
        if not session or session in self.expired_sessions:
            return web.json_response({"errcode": 300001, "errmsg": "session expired"})
        body = await request.json()
        text = body.get("text", {}).get("content", "") if body.get("msgtype") == "text" else ""
        return self._record(
            {"via": "webhook", "session": session, "conversationId": session.split(".", 1)[0], "msgtype": body.get("msgtype"), "text": text, "body": body}
        )

    async def _robot_send(self, request: web.Request, via: str) -> web.Response:
        if (failed := await self._injected(webhook=False)) is not None:
            return failed
        if (denied := self._token_error(request)) is not None:
            return denied
        body = await request.json()
        param = json.loads(body.get("msgParam") or "{}")
        entry = {"via": via, "robotCode": body.get("robotCode"), "msgKey": body.get("msgKey"), "text": param.get("content", param.get("text", "")), "body": body}
        if via == "batchSend":
            entry["userIds"] = body.get("userIds", [])
            entry["user"] = (body.get("userIds") or [""])[0]
        else:
            entry["conversationId"] = body.get("openConversationId")
        return self._record(entry)

    async def _batch_send(self, request: web.Request) -> web.Response:
        return await self._robot_send(request, "batchSend")

    async def _group_send(self, request: web.Request) -> web.Response:
        return await self._robot_send(request, "group")

    async def _download(self, request: web.Request) -> web.Response:
        if (denied := self._token_error(request)) is not None:
            return denied
        code = str((await request.json()).get("downloadCode", ""))
        if code not in self.files:
            return web.json_response({"code": "invalidParameter.downloadCode", "message": "downloadCode无效"}, status=400)
        prefix = request.path[: -len("/v1.0/robot/messageFiles/download")]
        return web.json_response({"downloadUrl": f"{request.url.origin()}{prefix}/_files/{code}"})

    async def _file(self, request: web.Request) -> web.Response:
        content = self.files.get(request.match_info["code"])
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    async def _file_upload(self, request: web.Request) -> web.Response:
        return web.json_response({"downloadCode": self.add_file(await request.read())})

    async def _todo(self, request: web.Request) -> web.Response:
        if (failed := await self._injected(webhook=False)) is not None:
            return failed
        if (denied := self._token_error(request)) is not None:
            return denied
        body = await request.json()
        task_id = f"task-{next(self._seq)}"
        record = {"id": task_id, "unionId": request.match_info["union_id"], "operatorId": request.query.get("operatorId"), **body}
        self.todos.append(record)
        return web.json_response({"id": task_id, "subject": body.get("subject"), "createdTime": int(time.time() * 1000), "done": False})

    async def _open_connection(self, request: web.Request) -> web.Response:
        self.stream_opens += 1
        body = await request.json()
        key = str(body.get("clientId", ""))
        if self.secrets and self.secrets.get(key) != body.get("clientSecret"):
            return web.json_response({"code": "invalidClientIdOrSecret", "message": "bad credentials"}, status=400)
        prefix = request.path[: -len("/v1.0/gateway/connections/open")]
        ws_origin = str(request.url.origin()).replace("http", "ws", 1)
        return web.json_response({"endpoint": f"{ws_origin}{prefix}/_stream", "ticket": uuid.uuid4().hex})

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._streams.append(ws)
        self._stream_event.set()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                ack = json.loads(msg.data)
                self.acks.append(ack)
                waiter = self._ack_waiters.get(str(ack.get("headers", {}).get("messageId", "")))
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        finally:
            self._streams.remove(ws)
        return ws

    async def _push(self, request: web.Request) -> web.Response:
        try:
            ack = await self.push(await request.json(), timeout_s=5.0)
        except asyncio.TimeoutError:
            return web.json_response({"error": "no stream connection or no ack"}, status=504)
        return web.json_response(ack)

    async def _list_sent(self, request: web.Request) -> web.Response:
        conversation = request.query.get("conversation")
        user = request.query.get("user")
        sent = [s for s in self.sent if (conversation and s.get("conversationId") == conversation) or (user and s.get("user") == user)] if (conversation or user) else self.sent
        return web.Response(text=json.dumps(sent, ensure_ascii=False), content_type="application/json")
