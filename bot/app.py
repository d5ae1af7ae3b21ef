"""The composition root: settings in, a running gateway out.

Everything is built here and handed down: channels, stores and skills receive their
clients in constructors, resources are opened and closed in ``cleanup_ctx`` (aiohttp's
``examples/background_tasks.py`` pattern), and the workers are tasks owned by the app's
lifetime. ``role`` decides what this process does: ``web`` serves webhooks, ``worker``
runs the inbound workers, outbox senders and scheduler, ``all`` does both.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient
from redis.asyncio import BlockingConnectionPool, Redis

from admin import ConsoleDeps, ConsoleSettings, build_console
from bot.config import Settings
from bot.conversation.events import ConversationEvents
from admin.keys import ApiKeyStore
from bot.apikeys import API_KEYS, SCOPES, ApiKeys
from bot.conversation.api import routes as conversation_routes
from bot.conversation.handoff import Handoff
from bot.conversation.ordering import ConversationGate
from bot.conversation.state import StateStore
from bot.dispatch import Dispatcher, Skill
from bot.nlu.client import NluClient
from bot.skillset import SkillContext, default_skills, ensure_skill_indexes
from bot.understanding import build_voice, start_rasa, understanding_settings
from bot.embedded import EmbeddedServer, start_mongo, start_redis
from bot.errors import ConfigError
from bot.health import HealthMonitor
from bot.outbox import Outbox, OutboxSender
from bot.queue import InboundQueue
from bot.runtime import RUNTIME, Runtime
from bot.store import MessageStore
from bot.templates import Templates
from bot.tokens import TokenCache
from bot.webhook import make_handler
from bot.worker import InboundWorker
from channels import BUILTIN_CHANNELS, SIMULATED_APIS
from channels.base import Channel, ChannelContext
from preferences.api import setup as setup_preferences
from skills.connectors import SIMULATED_CONNECTORS
from skills.services import SKILL_SERVICES, build_services
from skills.services import setup as setup_skill_services

log = logging.getLogger(__name__)

Role = Literal["all", "web", "worker"]


def public_url(settings: Settings) -> str:
    host = settings.http.host if settings.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.http.port}"


def build_channels(settings: Settings, ctx: ChannelContext) -> dict[tuple[str, str], Channel]:
    channels: dict[tuple[str, str], Channel] = {}
    for name, accounts in settings.channels.items():
        cls = BUILTIN_CHANNELS.get(name)
        if cls is None:
            raise ConfigError(f"channels.{name}: unknown channel (known: {', '.join(sorted(BUILTIN_CHANNELS))})")
        for section in accounts:
            channel = cls.from_settings(section, ctx)
            channels[(name, channel.account)] = channel
    return channels


async def open_stores(settings: Settings) -> tuple[Redis, AsyncMongoClient[Any], list[EmbeddedServer]]:
    embedded: list[EmbeddedServer] = []
    redis_url = settings.redis_url
    if not redis_url:
        server = await start_redis(settings.data_dir)
        embedded.append(server)
        redis_url = server.url
    mongo_url = settings.mongo_url
    if not mongo_url:
        server = await start_mongo(settings.data_dir)
        embedded.append(server)
        mongo_url = server.url
    # A blocking pool waits for a free connection instead of failing past max (redis-py 8).
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=64, timeout=5, socket_timeout=5, socket_connect_timeout=2
    )
    redis = Redis(connection_pool=pool)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=3000, connectTimeoutMS=2000)
    return redis, mongo, embedded


def build_app(
    settings: Settings,
    role: Role = "all",
    *,
    skills: Callable[[SkillContext], list[list[Skill]]] = default_skills,
) -> web.Application:
    app = web.Application(client_max_size=settings.http.max_body_bytes)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        redis, mongo, embedded = await open_stores(settings)
        http = aiohttp.ClientSession()
        try:
            db = mongo.get_default_database("kefu")
            store = MessageStore(db)
            await store.ensure_indexes()
            tokens = TokenCache(redis)
            templates = await asyncio.to_thread(Templates, _templates_dir(settings))
            pipeline = settings.pipeline
            outbox = Outbox(redis, pipeline.outbox_stream)
            states = StateStore(redis, db)
            gate = ConversationGate(redis, lock_ttl_ms=pipeline.claim_idle_ms)
            channels: dict[tuple[str, str], Channel] = {}
            events = ConversationEvents(redis)
            handoff = Handoff(redis, db, states, gate, outbox, store, templates, lambda n, a: channels.get((n, a)), events)
            await handoff.ensure_indexes()
            await ensure_skill_indexes(db)
            nlu = await asyncio.to_thread(understanding_settings, settings)
            services = build_services(settings, db, redis, http, tokens, public_url(settings), templates=templates)
            app[SKILL_SERVICES] = services
            skill_ctx = SkillContext(
                templates=templates,
                handoff=handoff,
                db=db,
                nlu_enabled=nlu is not None,
                fallback_limit=int(settings.section("conversation").get("fallback_limit", 2)),
                services=services,
            )
            rt = Runtime(
                settings=settings,
                redis=redis,
                mongo=mongo,
                http=http,
                store=store,
                queue=InboundQueue(redis, pipeline.inbound_stream, dedup_ttl_s=pipeline.dedup_ttl_s, claim_idle_ms=pipeline.claim_idle_ms),
                outbox=outbox,
                tokens=tokens,
                templates=templates,
                dispatcher=Dispatcher(skills(skill_ctx), templates),
                health=HealthMonitor(mongo),
                embedded=embedded,
                states=states,
                gate=gate,
                handoff=handoff,
                nlu_settings=nlu,
                nlu=NluClient.from_settings(http, nlu) if nlu is not None else None,
                voice=await build_voice(settings, store),
                events=events,
            )
            ctx = ChannelContext(
                http=http, redis=redis, tokens=tokens, public_url=public_url(settings), enqueue=rt.queue.enqueue,
                store=store,
            )
            channels.update(build_channels(settings, ctx))
            rt.channels = channels
            app[RUNTIME] = rt
            log.info(
                "gateway ready (role %s): %s",
                role,
                ", ".join(f"{n}/{a}" for n, a in rt.channels) or "no channels configured",
            )
            yield
            for channel in rt.channels.values():
                await channel.close()
            if rt.voice is not None and rt.voice.transcriber is not None:
                await rt.voice.transcriber.close()
        finally:
            await http.close()
            await redis.aclose()
            await mongo.close()
            for server in reversed(embedded):
                await server.stop()

    async def background_ctx(app: web.Application) -> AsyncIterator[None]:
        rt = app[RUNTIME]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(rt.health.run(stop), name="health")]
        if role in ("all", "worker"):
            tasks += worker_tasks(rt, stop)
            if rt.nlu_settings is not None:
                tasks.append(asyncio.create_task(start_rasa(rt, stop), name="rasa-autostart"))
            tasks += [
                asyncio.create_task(ch.run_background(stop), name=f"intake-{ch.name}-{ch.account}")
                for ch in rt.channels.values()
            ]
        yield
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(runtime_ctx)
    # Preferences API and notification engine; before background_ctx so its outbox
    # give-up hook is registered before the senders start.
    setup_preferences(app, role)
    # Business skills' jobs, API and demo data; after preferences so that their notifier
    # is bound to the notification engine before a job sends anything.
    setup_skill_services(app, role)
    app.cleanup_ctx.append(background_ctx)
    app[API_KEYS] = ApiKeys.from_section(settings.section("api"))
    if role in ("all", "web"):
        add_webhook_routes(app, settings)
        app.router.add_get("/healthz", healthz)
        app.add_routes(conversation_routes())
        console_settings = ConsoleSettings.from_section(settings.section("console"), public_url=public_url(settings))
        app.add_subapp("/admin", build_console(console_settings, lambda: console_deps(app[RUNTIME])))
    if settings.simulator:
        for name, target in SIMULATED_APIS.items():
            module_name, _, class_name = target.partition(":")
            fake = getattr(importlib.import_module(module_name), class_name)()
            app.add_subapp(f"/_sim/{name}", fake.app())
        for name, target in SIMULATED_CONNECTORS.items():  # ERP, ServiceNow, coupons, marketplaces
            module_name, _, class_name = target.partition(":")
            fake = getattr(importlib.import_module(module_name), class_name)()
            app.add_subapp(f"/_sim/{name}", fake.app())
    return app


def console_deps(rt: Runtime) -> ConsoleDeps:
    to_wav: Callable[[bytes, str], bytes] | None
    try:
        from speech.browser import to_wav
    except ImportError:  # no speech extra: voice notes are offered as stored
        to_wav = None
    return ConsoleDeps(
        redis=rt.redis, db=rt.store.db, store=rt.store, states=rt.states, handoff=rt.handoff, outbox=rt.outbox,
        channels=rt.channel, channel_settings=rt.settings.channels, api_scopes=SCOPES,
        api_keys=ApiKeyStore(rt.store.db, SCOPES), audio_to_browser=to_wav,
    )


def add_webhook_routes(app: web.Application, settings: Settings) -> None:
    for name in settings.channels:
        cls = BUILTIN_CHANNELS.get(name)
        if cls is None:
            continue  # reported when the channels are built
        handler = make_handler(name)
        for path in cls.route_paths():
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)


def worker_tasks(rt: Runtime, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    pipeline = rt.settings.pipeline
    base = f"{socket.gethostname()}:{os.getpid()}"
    tasks: list[asyncio.Task[None]] = []
    for i in range(pipeline.workers):
        worker = InboundWorker(
            rt.queue, rt.outbox, rt.store, rt.dispatcher, rt.channel,
            states=rt.states, gate=rt.gate, templates=rt.templates, nlu=rt.nlu, voice=rt.voice, events=rt.events,
            consumer=f"{base}:w{i}", batch=pipeline.batch, max_attempts=pipeline.max_inbound_attempts,
        )
        sender = OutboxSender(
            rt.outbox, rt.store, rt.channel,
            consumer=f"{base}:s{i}", claim_idle_ms=pipeline.claim_idle_ms,
            max_attempts=pipeline.outbox_max_attempts, backoff_s=pipeline.outbox_backoff_s,
            backoff_max_s=pipeline.outbox_backoff_max_s, batch=pipeline.batch,
            foreground=rt.voice.text_turn if rt.voice is not None else None,
        )
        tasks.append(asyncio.create_task(worker.run(stop), name=f"inbound-{i}"))
        tasks.append(asyncio.create_task(sender.run(stop), name=f"outbox-{i}"))
    tasks.append(asyncio.create_task(_every(0.2, rt.outbox.promote_due, stop), name="outbox-delayed"))
    return tasks


async def _every(interval_s: float, job: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled job %s failed", getattr(job, "__qualname__", job))
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass


async def healthz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    ok = rt.health.mongo_ok
    try:
        await rt.redis.ping()
    except Exception:
        ok = False
    return web.json_response({"ok": ok, "mongo": rt.health.mongo_ok}, status=200 if ok else 503)


def _templates_dir(settings: Settings) -> Path | None:
    raw = settings.section("templates").get("dir")
    return Path(raw) if raw else None
