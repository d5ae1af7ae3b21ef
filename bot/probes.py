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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from bot.metrics import Metrics
from bot.nlu.readiness import NluReadiness
from bot.voice import VoiceStep

CHECK_TIMEOUT_S = 0.8

# One readiness check: returns a short detail when ready, raises when not.
Check = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Probes:
    """What the probes look at, handed over by the composition root."""

    checks: Mapping[str, Check]
    metrics: Metrics
    redis: Redis
    streams: Sequence[str]  # their depth and oldest entry's age are gauges


PROBES = web.AppKey("probes", Probes)


def setup(app: web.Application) -> None:
    """Mount the three probes on ``app``; the root puts a :class:`Probes` at ``PROBES``."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def standard_checks(
    redis: Redis, mongo: AsyncMongoClient[Any], http: aiohttp.ClientSession, nlu: NluReadiness | None, voice: VoiceStep | None
) -> dict[str, Check]:
    """Redis and MongoDB always; NLU when configured; speech when a local engine is."""

    async def redis_ping() -> str:
        await redis.ping()
        return "ping ok"

    async def mongo_ping() -> str:
        await mongo.admin.command("ping")
        return "ping ok"

    checks: dict[str, Check] = {"redis": redis_ping, "mongodb": mongo_ping}
    if nlu is not None:
        urls = nlu.client.urls

        async def nlu_status() -> str:
            if nlu.absent:
                # No model yet: the bot serves with its keyword layer, so it is ready for
                # traffic; the detail says how far the first training is.
                return f"no model yet, keyword layer answering; training: {nlu.progress or 'not running here'}"
            answering: list[str] = []
            errors: list[str] = []
            for url in urls:
                try:
                    async with http.get(url + "/status") as resp:
                        if resp.status == 200:
                            answering.append(url)
                        else:
                            errors.append(f"{url}: HTTP {resp.status}")
                except Exception as exc:
                    errors.append(f"{url}: {type(exc).__name__}")
            # Answering /status is not enough: a freshly loaded model's first parse takes
            # seconds, so NLU is ready only once its warm-up parse has answered.
            if answering and nlu.ready:
                return f"{answering[0]} answers"
            if answering:
                raise RuntimeError(f"warming up ({', '.join(answering)} answer /status; no warm-up parse yet)")
            raise RuntimeError("warming up; " + "; ".join(errors))

        checks["nlu"] = nlu_status
    if voice is not None and voice.transcriber is not None:
        engine = type(voice.transcriber).__name__

        async def speech() -> str:
            return f"local engine {engine}"

        checks["speech"] = speech
    return checks


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[PROBES].checks
    results = await asyncio.gather(*(_checked(check()) for check in checks.values()))
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


async def metrics(request: web.Request) -> web.Response:
    probes = request.app[PROBES]
    await _stream_gauges(probes)
    resp = web.Response(body=probes.metrics.exposition())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def _stream_gauges(probes: Probes) -> None:
    """Depth and oldest age of the inbound and outbox streams: done entries are deleted,
    so what is on a stream is exactly the work not yet finished."""
    try:
        async with probes.redis.pipeline(transaction=False) as pipe:
            for stream in probes.streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
            replies: list[Any] = await asyncio.wait_for(pipe.execute(), CHECK_TIMEOUT_S)
    except Exception:
        return  # Redis is down: /readyz says so; the gauges keep their last values
    now_ms = time.time() * 1000
    for i, stream in enumerate(probes.streams):
        depth, first = replies[2 * i], replies[2 * i + 1]
        probes.metrics.queue_depth.labels(stream).set(depth)
        age = 0.0
        if first:
            entry_id = first[0][0]
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            age = max(0.0, (now_ms - int(entry_id.split("-")[0])) / 1000)
        probes.metrics.queue_oldest_age_seconds.labels(stream).set(age)
