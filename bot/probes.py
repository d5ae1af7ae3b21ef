"""``/healthz``, ``/readyz`` and ``/metrics``: what an orchestrator and Prometheus ask.

- ``/healthz``: the process answers (liveness). It checks nothing else, so a Redis
  outage does not get every gateway process restarted.
- ``/readyz``: each dependency this gateway is configured to use, by name (Redis,
  MongoDB, the NLU servers, the local speech engine), checked concurrently with a short
  timeout; 503 if any is not ready, so a load balancer sends webhooks elsewhere.
- ``/metrics``: Prometheus text format (:mod:`bot.metrics`); stream depth and the age
  of the oldest entry are read from Redis at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.runtime import RUNTIME, Runtime

CHECK_TIMEOUT_S = 0.8


def setup(app: web.Application) -> None:
    """Mount the three probes on ``app`` (the composition root's one line)."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    checks: dict[str, Awaitable[str]] = {"redis": _redis(rt), "mongodb": _mongo(rt)}
    if rt.nlu is not None:
        checks["nlu"] = _nlu(rt)
    if rt.voice is not None and rt.voice.transcriber is not None:
        checks["speech"] = _speech(rt)
    results = await asyncio.gather(*(_checked(c) for c in checks.values()))
    report = {name: {"ok": ok, "detail": detail} for name, (ok, detail) in zip(checks, results)}
    ready = all(ok for ok, _ in results)
    return web.json_response({"ready": ready, "checks": report}, status=200 if ready else 503)


async def _checked(check: Awaitable[str]) -> tuple[bool, str]:
    try:
        return True, await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except asyncio.TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT_S} s"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


async def _redis(rt: Runtime) -> str:
    await rt.redis.ping()
    return "ping ok"


async def _mongo(rt: Runtime) -> str:
    await rt.mongo.admin.command("ping")
    return "ping ok"


async def _nlu(rt: Runtime) -> str:
    assert rt.nlu is not None
    errors: list[str] = []
    for url in rt.nlu.urls:
        try:
            async with rt.http.get(url + "/status") as resp:
                if resp.status == 200:
                    return f"{url} answers"
                errors.append(f"{url}: HTTP {resp.status}")
        except Exception as exc:
            errors.append(f"{url}: {type(exc).__name__}")
    raise RuntimeError("; ".join(errors) or "no NLU URL")


async def _speech(rt: Runtime) -> str:
    assert rt.voice is not None and rt.voice.transcriber is not None
    return f"local engine {type(rt.voice.transcriber).__name__}"


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    await _stream_gauges(rt)
    resp = web.Response(body=rt.metrics.exposition())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def _stream_gauges(rt: Runtime) -> None:
    """Depth and oldest age of the inbound and outbox streams: done entries are deleted,
    so what is on a stream is exactly the work not yet finished."""
    streams = (rt.queue.stream, rt.outbox.stream)
    try:
        async with rt.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
            replies: list[Any] = await asyncio.wait_for(pipe.execute(), CHECK_TIMEOUT_S)
    except Exception:
        return  # Redis is down: /readyz says so; the gauges keep their last values
    now_ms = time.time() * 1000
    for i, stream in enumerate(streams):
        depth, first = replies[2 * i], replies[2 * i + 1]
        rt.metrics.queue_depth.labels(stream).set(depth)
        age = 0.0
        if first:
            entry_id = first[0][0]
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            age = max(0.0, (now_ms - int(entry_id.split("-")[0])) / 1000)
        rt.metrics.queue_oldest_age_seconds.labels(stream).set(age)
