"""The webhook ack path: verify -> decrypt -> parse -> dedup -> enqueue -> answer.

Nothing slow runs here. The only awaited I/O is one Redis script call; MongoDB health
comes from a flag the health monitor keeps. Rejections are one log line and a 4xx;
unreachable stores are a 503 so the platform retries instead of losing the message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from bot.runtime import RUNTIME
from channels.base import WebhookRequest
from channels.errors import PayloadTooLarge, UnknownAccount, WebhookRejected

log = logging.getLogger("kefu.webhook")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reject(request: web.Request, channel: str, exc: WebhookRejected) -> web.Response:
    log.warning(
        "%s rejected %s %s from %s: %s (%s)",
        channel, request.method, request.path, request.remote, exc.message, exc.code,
    )
    return web.Response(status=exc.status, text=f"{exc.code}: {exc.message}\n")


def make_handler(channel_name: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        rt = request.app[RUNTIME]
        account = request.match_info.get("account", "")
        channel = rt.channels.get((channel_name, account))
        try:
            if channel is None:
                raise UnknownAccount(f"no {channel_name} account {account!r}")
            if request.method == "GET":
                echo = channel.verify_url(WebhookRequest("GET", request.query, request.headers, b"", request.remote or ""))
                return web.Response(text=echo)
            if request.content_length is not None and request.content_length > rt.settings.http.max_body_bytes:
                raise PayloadTooLarge(f"body of {request.content_length} bytes is over the limit")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise PayloadTooLarge("body is over the limit") from exc
            received = channel.receive(WebhookRequest("POST", request.query, request.headers, body, request.remote or ""))
        except WebhookRejected as exc:
            return _reject(request, channel_name, exc)
        except Exception:
            # A parser bug must not become a 5xx: the platform would retry it forever.
            log.exception("%s/%s: unexpected error reading a webhook", channel_name, account)
            return web.Response(status=400, text="malformed: unreadable payload\n")
        if not rt.health.mongo_ok:
            return web.Response(status=503, text="storage unavailable, retry later\n")
        try:
            await rt.queue.enqueue(received.messages)
        except (RedisError, OSError) as exc:
            log.error("%s/%s: cannot enqueue (%s); answered 503 so the platform retries", channel_name, account, exc)
            return web.Response(status=503, text="queue unavailable, retry later\n")
        return web.Response(text=received.ack_body, content_type=received.ack_content_type)

    return handle
