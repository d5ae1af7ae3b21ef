"""The webhook ack path: verify -> decrypt -> parse -> dedup -> enqueue -> answer.

Nothing slow runs here. The only awaited I/O is one Redis script call, bounded by
:data:`ENQUEUE_DEADLINE_S` so that a frozen Redis still gets the platform an answer
(a 503, so it retries) well within WeChat's 5 s and WeCom's 1 s; MongoDB health comes
from a flag the health monitor keeps. Rejections are one classified, rate-limited log
line and a 4xx, never a traceback: most of them come from strangers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.logs import Throttle, quiet_unreadable_bodies
from bot.runtime import RUNTIME
from channels.base import WebhookRequest
from channels.errors import BadEncoding, PayloadTooLarge, UnknownAccount, WebhookRejected

log = logging.getLogger("kefu.webhook")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Time the ack may wait on Redis: below WeCom's 1 s, so a stuck Redis costs a retry.
ENQUEUE_DEADLINE_S = 0.8


def _reject(lines: Throttle, request: web.Request, channel: str, exc: WebhookRejected) -> web.Response:
    lines.log(
        logging.WARNING, f"{channel}:{exc.code}",
        "%s rejected %s %s from %s: %s (%s)", channel, request.method, request.path, request.remote, exc.message, exc.code,
    )
    return web.Response(status=exc.status, text=f"{exc.code}: {exc.message}\n")


def _unexpected(lines: Throttle, channel: str, account: str, exc: Exception) -> None:
    # Where it broke, without the traceback (and the payload values a traceback's
    # locals may show): enough to find the parser bug, nothing for a stranger to flood.
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else "?"
    lines.log(
        logging.ERROR, f"{channel}:unexpected:{type(exc).__name__}",
        "%s/%s: unreadable webhook (%s at %s); answered 400", channel, account, type(exc).__name__, where,
    )
    log.debug("%s/%s: unreadable webhook", channel, account, exc_info=exc)


def make_handler(channel_name: str) -> Handler:
    quiet_unreadable_bodies()
    lines = Throttle(log)  # one per channel and app: what a flood of junk may log

    async def handle(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        outcome, response = await _handle(request)
        metrics = request.app[RUNTIME].metrics
        metrics.webhook_requests.labels(channel_name, outcome).inc()
        metrics.webhook_ack_seconds.labels(channel_name, outcome).observe(time.perf_counter() - start)
        return response

    async def _handle(request: web.Request) -> tuple[str, web.Response]:
        rt = request.app[RUNTIME]
        account = request.match_info.get("account", "")
        channel = rt.channels.get((channel_name, account))
        try:
            if channel is None:
                raise UnknownAccount(f"no {channel_name} account {account!r}")
            if request.method == "GET":
                echo = channel.verify_url(WebhookRequest("GET", request.query, request.headers, b"", request.remote or ""))
                return "verified", web.Response(text=echo)
            if request.headers.get("Content-Encoding", "identity").lower() != "identity":
                # No platform compresses its callbacks; decompressing a stranger's body
                # is work (and a zip bomb) for nothing.
                raise BadEncoding(f"Content-Encoding {request.headers['Content-Encoding'][:40]!r} is not accepted")
            if request.content_length is not None and request.content_length > rt.settings.http.max_body_bytes:
                raise PayloadTooLarge(f"body of {request.content_length} bytes is over the limit")
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                raise PayloadTooLarge("body is over the limit") from exc
            received = channel.receive(WebhookRequest("POST", request.query, request.headers, body, request.remote or ""))
        except WebhookRejected as exc:
            return exc.code, _reject(lines, request, channel_name, exc)
        except Exception as exc:
            # A parser bug must not become a 5xx: the platform would retry it forever.
            _unexpected(lines, channel_name, account, exc)
            return "unreadable", web.Response(status=400, text="malformed: unreadable payload\n")
        if not rt.health.mongo_ok:
            return "mongo_down", web.Response(status=503, text="storage unavailable, retry later\n")
        try:
            await asyncio.wait_for(rt.queue.enqueue(received.messages), ENQUEUE_DEADLINE_S)
        except asyncio.TimeoutError:
            # The script may still land; the platform's retry is then dropped as a duplicate.
            lines.log(logging.ERROR, "redis_slow", "%s/%s: Redis did not answer in %.1f s; answered 503", channel_name, account, ENQUEUE_DEADLINE_S)
            return "redis_slow", web.Response(status=503, text="queue unavailable, retry later\n")
        except Exception as exc:
            # Unreachable Redis, or Redis refusing this message alone (see InboundQueue).
            lines.log(
                logging.ERROR, f"enqueue:{type(exc).__name__}",
                "%s/%s: cannot enqueue (%s: %s); answered 503 so the platform retries", channel_name, account, type(exc).__name__, exc,
            )
            return "redis_down", web.Response(status=503, text="queue unavailable, retry later\n")
        return "accepted", web.Response(text=received.ack_body, content_type=received.ack_content_type)

    return handle
