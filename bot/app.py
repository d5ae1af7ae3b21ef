"""The composition root: settings in, a running gateway out. Only the command line imports it.

Everything is built here, once, in dependency order, and handed down in constructors:
stores -> queue and outbox -> channels -> hand-off -> preference store and notification
engine -> notifier -> NLU -> business skill services -> the chat skills (listed in
:mod:`bot.skillset`) -> skill router -> workers and jobs. Nothing is bound, patched or
re-ordered after it is built. Resources are opened and closed in one ``cleanup_ctx``
(aiohttp's ``examples/background_tasks.py`` pattern); background work runs in one
:class:`~bot.tasks.BackgroundTasks` owned by the app's lifetime.

``role`` decides what this process does: ``web`` serves webhooks, the APIs and the web
pages, ``worker`` runs the inbound workers, outbox senders and periodic jobs, ``all``
both. ``console`` serves only the admin console (its pages and their live event streams,
no webhooks, no ``/api``): a deployment sends ``/admin`` there so that the live updates'
fan-out to every open page never shares a core with the webhooks' acknowledgements.

How a package plugs in:

* JSON endpoints: the package exports ``routes() -> list[web.RouteDef]`` (paths relative
  to ``/api``, handlers marked ``@requires(scope)`` or ``@public``, see :mod:`bot.api`);
  add the call to the ``api_routes`` list in :func:`build_app`. Keys, scopes, JSON error
  mapping come from the ``/api`` sub-app's middleware.
* Its services: the package exports ``build_<package>(...)`` taking what it needs as
  arguments and returning a frozen dataclass, plus an ``AppKey`` for it; the root calls
  it in :func:`_start` in dependency order and stores the result under that key, where
  handlers read it with ``request.config_dict[KEY]``. Periodic work is returned as
  :class:`~bot.tasks.Job` values from a ``jobs(...)`` function.
* A web UI (the admin console, the customer portal): ``admin.build_console(...)`` and
  ``portal.build_portal(...)`` return a ``web.Application`` mounted with
  ``app.add_subapp("/admin" | "/portal", ...)`` in :func:`build_app`; its JSON endpoints
  go on ``/api`` like any other package's.

A package never imports this module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from admin import ConsoleDeps, ConsoleSettings, build_console
from admin.keys import ApiKeyStore
from admin.users import UserStore
from portal import PortalDeps, PortalSettings, build_portal
from portal.links import Grant, SignInLinks
from portal.signing import SummarySigner
from portal.wechat_oauth import WeChatOAuth
from bot.announce import Announcer
from bot.api import ISSUED_KEYS, build_api
from bot.apikeys import SCOPES, ApiKeys
from bot.config import Settings
from bot.conversation.api import routes as conversation_routes
from bot.conversation.events import ConversationEvents
from bot.customer_card import ConversationActions, CustomerCard, join_sources
from bot.conversation.handoff import Handoff
from bot.conversation.ordering import ConversationGate
from bot.conversation.state import StateStore
from bot.errors import ConfigError
from bot.health import HealthMonitor
from bot.mongo import Document
from bot.metrics import Metrics
from bot import probes
from bot.nlu.client import NluClient
from bot.nlu.readiness import NluReadiness
from bot.nlu.switch import ModelSwitch
from bot.outbox import GiveUpHook, Outbox, OutboxSender
from bot.queue import InboundQueue
from bot.routing import Skill, SkillRouter
from bot.runtime import RUNTIME, Runtime
from bot.skillset import TEMPLATE_DIRS, SkillContext, default_skills
from bot.store import MessageStore
from bot.stores import close_stores, open_stores
from bot.tasks import BackgroundTasks, Job
from bot.templates import Templates
from bot.tokens import TokenCache
from bot.understanding import build_voice, start_rasa, train_then_start_rasa, understanding_settings
from bot.voice_archive import VoiceArchive, VoiceArchiveSettings
from bot.webhook import make_handler
from bot.worker import InboundWorker
from channels import CHANNEL_CLASSES, channel_registry
from channels.base import Channel, ChannelContext
from channels.dingtalk.client import DingTalkClient
from channels.email.channel import EmailChannel
from channels.dingtalk.todo import DingTalkTodos
from knowledge.api import routes as knowledge_routes
from knowledge.customer import CrmCustomerFacts, CustomerFacts
from knowledge.containment import CONTAINMENT
from knowledge.service import KNOWLEDGE, Knowledge, build_knowledge, containment_sources, load_demo, tuning_from
from preferences import services as preferences
from preferences.customer_card import preference_card
from preferences.api import routes as preference_routes
from preferences.clock import SystemClock
from preferences.rules import CustomerRules
from skills import services as business
from skills.conversation_actions import skill_actions
from skills.customer_card import skill_card
from skills.api import page_routes as skill_page_routes
from skills.api import routes as skill_routes
from skills.connectors.base import ConnectorSettings
from skills.connectors.registry import SIMULATED_CONNECTORS
from skills.connectors.todo import TodoApiFactory
from skills.notifier import Notifier
from skills.repair_dispatch.tickets import CHANGED as TICKETS_CHANGED
from skills.repair_dispatch.tickets import Tickets

log = logging.getLogger(__name__)

Role = Literal["all", "web", "worker", "console"]
SkillFactory = Callable[[SkillContext], list[list[Skill]]]
# API keys issued in the console: checked by /api, managed by the console's admins.
KEY_STORE = web.AppKey("api_key_store", ApiKeyStore)
PORTAL_DEPS = web.AppKey("portal_deps", PortalDeps)


def build_app(
    settings: Settings,
    role: Role = "all",
    *,
    skills: SkillFactory = default_skills,
    channel_classes: Sequence[type[Channel]] = CHANNEL_CLASSES,
) -> web.Application:
    """The gateway as an aiohttp application.

    Args:
        skills: the chat skills in their groups (tests pass their own).
        channel_classes: the channels this gateway knows; a test adds its own here.
    """
    registry = channel_registry(channel_classes)
    app = web.Application(client_max_size=settings.http.max_body_bytes)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        redis, mongo, embedded = await open_stores(settings)
        http = aiohttp.ClientSession()
        metrics = Metrics()
        tasks = BackgroundTasks(metrics)
        rt: Runtime | None = None
        try:
            rt = await _start(app, settings, role, registry, skills, redis, mongo, http, tasks, metrics)
            yield
        finally:
            await tasks.close()
            if rt is not None:
                await _close(rt)
            if KNOWLEDGE in app:
                await app[KNOWLEDGE].close()
            await http.close()
            await close_stores(redis, mongo, embedded)

    app.cleanup_ctx.append(lifetime)
    if role in ("all", "web"):
        add_webhook_routes(app, settings, registry)
        app.add_routes(skill_page_routes())
        api_routes = [conversation_routes(), preference_routes(), skill_routes(), knowledge_routes()]
        keys = ApiKeys.from_section(settings.section("api"))
        app.add_subapp("/api", build_api(keys, api_routes, client_max_size=settings.http.max_body_bytes))
        add_console(app, settings)
        app.add_subapp("/portal", build_portal(portal_settings(settings), lambda: app[PORTAL_DEPS]))
    elif role == "console":
        add_console(app, settings)
    probes.setup(app)  # every role: a worker serves them when started with --port
    if settings.simulator:
        for name, cls in registry.items():
            if cls.fake_api is not None:
                app.add_subapp(f"/_sim/{name}", cls.fake_api().app())
        for name, fake in SIMULATED_CONNECTORS.items():  # ERP, ServiceNow, coupons, marketplaces
            app.add_subapp(f"/_sim/{name}", fake().app())
    return app


def add_console(app: web.Application, settings: Settings) -> None:
    console = ConsoleSettings.from_section(settings.section("console"), public_url=settings.http.public_url)
    app.add_subapp("/admin", build_console(console, lambda: console_deps(
        app[RUNTIME], app[KEY_STORE], customer_card(app), app[preferences.SERVICES], app[business.SKILL_SERVICES],
        conversation_actions(app), app.get(KNOWLEDGE),
    )))


async def _start(
    app: web.Application,
    settings: Settings,
    role: Role,
    registry: Mapping[str, type[Channel]],
    skills: SkillFactory,
    redis: Redis,
    mongo: AsyncMongoClient[Any],
    http: aiohttp.ClientSession,
    tasks: BackgroundTasks,
    metrics: Metrics,
) -> Runtime:
    """Build the gateway's parts in dependency order, publish them, start the background work."""
    pipeline = settings.pipeline
    db = mongo.get_default_database("kefu")
    store = MessageStore(db, metrics=metrics)
    await store.ensure_indexes()
    tokens = TokenCache(redis)
    templates = await asyncio.to_thread(Templates, TEMPLATE_DIRS, _templates_dir(settings))
    queue = InboundQueue(redis, pipeline.inbound_stream, dedup_ttl_s=pipeline.dedup_ttl_s, claim_idle_ms=pipeline.claim_idle_ms)
    outbox = Outbox(redis, pipeline.outbox_stream)
    states = StateStore(redis, db, writes=store.conversation_writes)
    gate = ConversationGate(redis, lock_ttl_ms=pipeline.claim_idle_ms)
    channels = build_channels(
        settings, registry,
        ChannelContext(http=http, redis=redis, tokens=tokens, public_url=settings.http.public_url, enqueue=queue.enqueue, store=store),
    )
    events = ConversationEvents(redis)
    handoff = Handoff(redis, db, states, gate, outbox, store, templates, lambda n, a: channels.get((n, a)), events)
    await handoff.ensure_indexes()
    prefs_section = settings.section("preferences")
    tickets = Tickets(db, announcer=Announcer(redis, TICKETS_CHANGED))
    prefs = await preferences.build_preferences(
        prefs_section, db, redis, outbox, store,
        clock=SystemClock(), tickets=tickets, channels=registry,
        configured=lambda n, a: (n, a) in channels,
        default_accounts={name: account for name, account in reversed(list(channels))},  # the first of each channel
        public_url=settings.http.public_url,
        streams=(pipeline.inbound_stream, pipeline.outbox_stream),
    )
    nlu_plan = await asyncio.to_thread(understanding_settings, settings)
    nlu_settings = nlu_plan.settings if nlu_plan is not None else None
    nlu = NluClient.from_settings(http, nlu_settings) if nlu_settings is not None else None
    readiness = (
        NluReadiness(
            nlu, quiet_wait_s=nlu_settings.quiet_wait_s, max_wait_s=nlu_settings.max_wait_s,
            # Only the process that trains knows when the model comes; the others see
            # "no model" from Rasa's /status meanwhile.
            training=nlu_plan is not None and nlu_plan.train_first and role in ("all", "worker"),
        )
        if nlu is not None and nlu_settings is not None
        else None
    )
    customer_rules = CustomerRules(db)
    voice_archive = VoiceArchive(db, VoiceArchiveSettings.from_section(settings.section("voice_notes")))
    await voice_archive.ensure_indexes()
    services = business.build_services(
        settings, db, redis, http, settings.http.public_url,
        templates=templates, notifier=Notifier(prefs.engine, customer_rules), tickets=tickets, nlu=nlu,
        todo_api=dingtalk_todos(http, tokens),
    )
    await business.start_services(services)
    kb = await _knowledge(settings, db, redis, CrmCustomerFacts(services.catalog, prefs.prefs), enabled=nlu is not None,
                          nlu_data=nlu_settings.data_path / "data" if nlu_settings is not None else None)
    portal_cfg = portal_settings(settings)
    links = SignInLinks(
        redis, public_url=settings.http.public_url, ttl_s=portal_cfg.link_ttl_s,
        secret=portal_cfg.link_secret.encode() if portal_cfg.link_secret else None,
    )
    app[PORTAL_DEPS] = PortalDeps(
        redis=redis, db=db, prefs=prefs.prefs, engine=prefs.engine, rights=prefs.rights, rules=customer_rules,
        tickets=services.tickets, renewals=services.renewals, repair=services.repair, links=links,
        wechat_oauth=wechat_web_auth(settings, portal_cfg, http),
        signer=SummarySigner(redis, key_file=portal_cfg.summary_key_file), mailer=summary_mailer(channels, portal_cfg),
    )

    async def account_link(customer: str) -> str:
        return await links.issue(Grant(customer))

    skill_ctx = SkillContext(
        templates=templates, handoff=handoff, redis=redis, services=services, preferences=prefs,
        nlu_enabled=nlu is not None, fallback_limit=int(settings.section("conversation").get("fallback_limit", 2)),
        knowledge=kb, account_link=account_link, account_link_minutes=max(1, portal_cfg.link_ttl_s // 60),
    )
    rt = Runtime(
        settings=settings, redis=redis, store=store, queue=queue, outbox=outbox,
        templates=templates, router=skill_router(skills, skill_ctx, readiness),
        health=HealthMonitor(mongo, interval_s=0.25, timeout_s=0.5), states=states, gate=gate, handoff=handoff,
        channels=channels, metrics=metrics, nlu=nlu, nlu_readiness=readiness,
        nlu_switch=ModelSwitch(nlu_settings) if nlu_settings is not None else None, voice=await build_voice(settings, store, voice_archive, kb.transcripts if kb is not None else None),
        events=events,
    )
    app[RUNTIME] = rt
    app[probes.PROBES] = probes.Probes(
        checks=probes.standard_checks(redis, mongo, http, readiness, rt.voice), metrics=metrics, redis=redis,
        streams=(pipeline.inbound_stream, pipeline.outbox_stream),
    )
    console = ConsoleSettings.from_section(settings.section("console"), public_url=settings.http.public_url)
    for name, console_role, password in console.demo_users:
        await UserStore(db).ensure(name, console_role, password)
    issued_keys = ApiKeyStore(db, SCOPES)
    await issued_keys.ensure_indexes()
    app[ISSUED_KEYS] = app[KEY_STORE] = issued_keys
    app[preferences.SERVICES] = prefs
    app[business.SKILL_SERVICES] = services
    if kb is not None:
        app[KNOWLEDGE] = kb
        app[CONTAINMENT] = containment_sources(kb, store, handoff)
    tasks.start("health", rt.health.run(tasks.stop))
    tasks.start_jobs(preferences.every_process_jobs(prefs))
    if readiness is not None:  # also in web processes: /readyz reports it
        tasks.start("nlu-readiness", readiness.run(tasks.stop))
    if role in ("all", "worker"):
        worker_tasks(rt, tasks, prefs.engine.on_give_up)
        tasks.start_jobs(preferences.jobs(prefs_section, prefs.engine, prefs.rights, rt.outbox.is_handled, prefs.activity))
        tasks.start_jobs(business.jobs(services))
        tasks.start_jobs(voice_archive.jobs())
        if nlu_plan is not None and nlu_plan.train_first and readiness is not None:
            tasks.start("nlu-first-training", train_then_start_rasa(nlu_plan.settings, http, tasks.stop, readiness))
        elif nlu_settings is not None:
            tasks.start("rasa-autostart", start_rasa(nlu_settings, http, tasks.stop, readiness))
        for channel in channels.values():
            tasks.start(f"intake-{channel.name}-{channel.account}", channel.run_background(tasks.stop))
    log.info("gateway ready (role %s): %s", role, ", ".join(f"{n}/{a}" for n, a in channels) or "no channels configured")
    return rt


def skill_router(skills: SkillFactory, ctx: SkillContext, readiness: NluReadiness | None) -> SkillRouter:
    """The skills in their groups; with NLU configured, also the keyword layer's groups,
    which answer while NLU has no model yet (a first training in the background)."""
    if readiness is None:
        return SkillRouter(skills(ctx), ctx.templates)
    keyword_only = skills(dataclasses.replace(ctx, nlu_enabled=False, nlu_progress=lambda: readiness.progress))
    return SkillRouter(skills(ctx), ctx.templates, without_nlu=keyword_only, nlu_absent=lambda: readiness.absent)


async def _knowledge(
    settings: Settings, db: AsyncDatabase[Document], redis: Redis, customers: CustomerFacts, *, enabled: bool,
    nlu_data: Path | None = None,
) -> Knowledge | None:
    """The knowledge base; on by default where NLU runs (its skills answer what NLU
    leaves), or where ``knowledge.enabled`` says so (its API alone)."""
    section = settings.section("knowledge")
    if not section.get("enabled", enabled):
        return None
    kb = await build_knowledge(
        db, redis, customers, tuning=tuning_from(dict(section)), low_confidence=float(section.get("low_confidence", 0.6)),
        nlu_data=nlu_data,
    )
    if settings.simulator:
        await load_demo(kb.store)
    return kb


async def _close(rt: Runtime) -> None:
    for channel in rt.channels.values():
        await channel.close()
    if rt.voice is not None and rt.voice.transcriber is not None:
        await rt.voice.transcriber.close()


def customer_card(app: web.Application) -> CustomerCard:
    return join_sources([skill_card(app[business.SKILL_SERVICES]), preference_card(app[preferences.SERVICES].prefs)])


def conversation_actions(app: web.Application) -> ConversationActions:
    return join_sources([skill_actions(app[business.SKILL_SERVICES])])


def console_deps(
    rt: Runtime, api_keys: ApiKeyStore, card: CustomerCard, prefs: preferences.PreferenceServices, skills: business.SkillServices,
    actions: ConversationActions | None = None, knowledge: Knowledge | None = None,
) -> ConsoleDeps:
    to_wav: Callable[[bytes, str], bytes] | None
    try:
        from speech.browser import to_wav
    except ImportError:  # no speech extra: voice notes are offered as stored
        to_wav = None
    return ConsoleDeps(
        redis=rt.redis, db=rt.store.db, store=rt.store, states=rt.states, handoff=rt.handoff, outbox=rt.outbox,
        channels=rt.channel, channel_settings=rt.settings.channels, api_scopes=SCOPES,
        api_keys=api_keys, customer_card=card, audio_to_browser=to_wav, preferences=prefs, skills=skills,
        voice_archive=rt.voice.archive if rt.voice is not None else None, conversation_actions=actions, inbound=rt.queue,
        knowledge=knowledge, model_switch=rt.nlu_switch,
    )


def portal_settings(settings: Settings) -> PortalSettings:
    return PortalSettings.from_section(settings.section("portal"))


def wechat_web_auth(settings: Settings, portal: PortalSettings, http: aiohttp.ClientSession) -> dict[str, WeChatOAuth]:
    """Web authorisation for the WeChat accounts the portal section names, from their channel settings."""
    accounts = {str(a.get("account", "")): a for a in settings.channels.get("wechat", ())}
    out: dict[str, WeChatOAuth] = {}
    for name in portal.wechat_web_auth:
        section = accounts.get(name)
        if section is None:
            raise ConfigError(f"portal.wechat_web_auth: no WeChat account {name!r} under channels.wechat")
        out[name] = WeChatOAuth(
            http, name, str(section["app_id"]), str(section["app_secret"]),
            api_base_url=str(section.get("api_base_url") or "https://api.weixin.qq.com"),
            authorize_base_url=portal.wechat_authorize_url,
        )
    return out


def summary_mailer(channels: Mapping[tuple[str, str], Channel], portal: PortalSettings) -> EmailChannel | None:
    """The email account that sends the portal's signed summaries."""
    accounts = [c for (name, account), c in channels.items() if isinstance(c, EmailChannel) and portal.mail_account in ("", account)]
    if portal.mail_account and not accounts:
        raise ConfigError(f"portal.mail_account: no email account {portal.mail_account!r} under channels.email")
    return accounts[0] if accounts else None


def dingtalk_todos(http: aiohttp.ClientSession, tokens: TokenCache) -> TodoApiFactory:
    """The to-do connector's client: a DingTalk app from the connector's own settings."""

    def build(s: ConnectorSettings) -> DingTalkTodos:
        return DingTalkTodos(DingTalkClient(
            http, tokens, app_key=s.option("app_key", "kefu-todo"), app_secret=s.option("app_secret", "demo"),
            robot_code=s.option("robot_code", ""), base_url=s.base_url, timeout_s=s.timeout_s,
        ))

    return build


def build_channels(
    settings: Settings, registry: Mapping[str, type[Channel]], ctx: ChannelContext
) -> dict[tuple[str, str], Channel]:
    channels: dict[tuple[str, str], Channel] = {}
    for name, accounts in settings.channels.items():
        cls = registry.get(name)
        if cls is None:
            raise ConfigError(f"channels.{name}: unknown channel (known: {', '.join(sorted(registry))})")
        for section in accounts:
            channel = cls.from_settings(section, ctx)
            channels[(name, channel.account)] = channel
    return channels


def add_webhook_routes(app: web.Application, settings: Settings, registry: Mapping[str, type[Channel]]) -> None:
    for name in settings.channels:
        cls = registry.get(name)
        if cls is None:
            continue  # reported when the channels are built
        handler = make_handler(name)
        for path in cls.route_paths():
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)


def worker_tasks(rt: Runtime, tasks: BackgroundTasks, on_give_up: GiveUpHook) -> None:
    pipeline = rt.settings.pipeline
    base = f"{socket.gethostname()}:{os.getpid()}"
    for i in range(pipeline.workers):
        worker = InboundWorker(
            rt.queue, rt.outbox, rt.store, rt.router, rt.channel,
            states=rt.states, gate=rt.gate, templates=rt.templates, nlu=rt.nlu_readiness, voice=rt.voice, events=rt.events,
            consumer=f"{base}:w{i}", batch=pipeline.batch, max_attempts=pipeline.max_inbound_attempts,
            metrics=rt.metrics,
        )
        sender = OutboxSender(
            rt.outbox, rt.store, rt.channel,
            consumer=f"{base}:s{i}", claim_idle_ms=pipeline.claim_idle_ms,
            max_attempts=pipeline.outbox_max_attempts, backoff_s=pipeline.outbox_backoff_s,
            backoff_max_s=pipeline.outbox_backoff_max_s, batch=pipeline.batch,
            foreground=rt.voice.text_turn if rt.voice is not None else None, on_give_up=on_give_up,
            metrics=rt.metrics,
        )
        tasks.start(f"inbound-{i}", worker.run(tasks.stop))
        tasks.start(f"outbox-{i}", sender.run(tasks.stop))
    tasks.start_jobs([Job("outbox-delayed", 0.2, rt.outbox.promote_due)])


def _templates_dir(settings: Settings) -> Path | None:
    raw = settings.section("templates").get("dir")
    return Path(raw) if raw else None
