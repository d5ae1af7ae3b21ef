"""Stream mode: robot messages over DingTalk's websocket gateway, no public URL needed.

The frame model and the ack protocol are the ``dingtalk-stream`` SDK's
(``CallbackMessage``, ``SystemMessage``, ``CallbackHandler.raw_process``). The connection
loop is ours, for three reasons visible in the SDK's ``DingTalkStreamClient.start``: it
opens the connection with blocking ``requests`` inside the event loop, it reads the API
endpoint from an environment variable at import time (one endpoint per process, so no
per-account fake for tests), and it catches ``CancelledError`` and reconnects, so the
task can never be stopped. Here the ``connections/open`` call goes through the gateway's
``aiohttp`` session against the account's ``api_base_url``, and ``stop`` ends the loop.

Docs: https://open.dingtalk.com/document/direction/stream-mode-protocol-access-description
      https://github.com/open-dingtalk/dingtalk-stream-sdk-python
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, ChatbotMessage, SystemMessage

from bot.logs import Outage
from bot.messages import InboundMessage
from channels.dingtalk.parser import to_message
from channels.errors import WebhookRejected

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[InboundMessage]], Awaitable[int]]
BOT_TOPIC: str = ChatbotMessage.TOPIC  # "/v1.0/im/bot/messages/get"


class RobotMessageHandler(CallbackHandler):  # type: ignore[misc]
    """Turns a robot-message callback frame into an InboundMessage and queues it.

    The ack tells DingTalk whether to redeliver: OK once queued (or for a payload that
    can never be read, so it is not redelivered forever), a system error when the queue
    is unreachable so that the platform tries again.
    """

    def __init__(self, account: str, enqueue: Enqueue) -> None:
        super().__init__()
        self.account = account
        self._enqueue = enqueue

    async def process(self, message: Any) -> tuple[int, str]:
        data = message.data if isinstance(message.data, dict) else {}
        try:
            inbound = to_message(data, self.account, json.dumps(data, ensure_ascii=False))
        except WebhookRejected as exc:
            log.warning("dingtalk/%s stream: unreadable robot message (%s)", self.account, exc.message)
            return AckMessage.STATUS_OK, "ignored"
        try:
            await self._enqueue((inbound,))
        except Exception as exc:
            log.error("dingtalk/%s stream: cannot enqueue (%s); DingTalk will redeliver", self.account, exc)
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "queue unavailable"
        return AckMessage.STATUS_OK, "OK"


class StreamIntake:
    """One account's stream connection, reconnecting with backoff until stopped."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        account: str,
        app_key: str,
        app_secret: str,
        base_url: str,
        enqueue: Enqueue,
        reconnect_s: float = 1.0,
        reconnect_max_s: float = 60.0,
    ) -> None:
        self._http = http
        self.account = account
        self._app_key = app_key
        self._app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.handler = RobotMessageHandler(account, enqueue)
        self._reconnect_s = reconnect_s
        self._reconnect_max_s = reconnect_max_s
        self.connections = 0  # how many times a websocket was opened (for tests/metrics)

    async def open_connection(self) -> tuple[str, str]:
        """POST /v1.0/gateway/connections/open -> (websocket endpoint, ticket)."""
        body = {
            "clientId": self._app_key,
            "clientSecret": self._app_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}],
            "ua": "kefu-dingtalk-stream",
            "localIp": "",
        }
        async with self._http.post(
            self.base_url + "/v1.0/gateway/connections/open", json=body, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 300 or not isinstance(data, dict):
                raise ConnectionError(f"connections/open: HTTP {resp.status} {data!r}")
        endpoint, ticket = data.get("endpoint"), data.get("ticket")
        if not isinstance(endpoint, str) or not isinstance(ticket, str):
            raise ConnectionError(f"connections/open answered without endpoint/ticket: {data!r}")
        return endpoint, ticket

    async def run(self, stop: asyncio.Event) -> None:
        delay = self._reconnect_s
        # Reconnects back off up to _reconnect_max_s; the outage is told once, and its end.
        outage = Outage(log, f"dingtalk/{self.account} stream")
        while not stop.is_set():
            try:
                endpoint, ticket = await self.open_connection()
                async with self._http.ws_connect(endpoint, params={"ticket": ticket}, heartbeat=60) as ws:
                    self.connections += 1
                    delay = self._reconnect_s
                    outage.ok()
                    log.info("dingtalk/%s stream connected", self.account)
                    await self._serve(ws, stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outage.failed(exc)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(self._reconnect_max_s, delay * 2)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        receiving: asyncio.Future[aiohttp.WSMessage] | None = None
        try:
            while True:
                receiving = asyncio.ensure_future(ws.receive())
                done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    return
                frame = receiving.result()
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    return  # closed or broken: reconnect
                if await self.handle_frame(ws, frame.data) == "disconnect":
                    return
        finally:
            # A receive still pending would keep the close handshake from finishing.
            stopping.cancel()
            if receiving is not None and not receiving.done():
                receiving.cancel()
            await ws.close()

    async def handle_frame(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> str:
        """Route one frame and send its ack; returns "disconnect" when asked to reconnect."""
        try:
            frame = json.loads(text)
        except ValueError:
            log.warning("dingtalk/%s stream: frame is not JSON", self.account)
            return ""
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == CallbackMessage.TYPE:
            message = CallbackMessage.from_dict(frame)
            if message.headers.topic != BOT_TOPIC:
                return ""
            ack = await self.handler.raw_process(message)
        elif kind == SystemMessage.TYPE:
            message = SystemMessage.from_dict(frame)
            if message.headers.topic == SystemMessage.TOPIC_DISCONNECT:
                return "disconnect"
            # "ping": echo the data back, as the SDK's SystemHandler does.
            ack = AckMessage()
            ack.headers.message_id = message.headers.message_id
            ack.headers.content_type = "application/json"
            ack.data = message.data
        else:
            return ""
        await ws.send_str(json.dumps(ack.to_dict()))
        return ""
