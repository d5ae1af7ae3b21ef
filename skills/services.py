"""The business skills' shared services, their background jobs, JSON API and demo data.

Built once by the composition root (:func:`build_services`) and handed to the skills in
:class:`bot.skillset.SkillContext`; :func:`setup` (called by ``bot.app`` after the
preferences' setup) binds the notification engine, creates indexes, loads the demo data
in simulator mode and, in worker processes, runs the jobs: repair retries, the renewal
scan, marketplace pulls and the review resolution tracker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.config import Settings
from bot.templates import Templates
from bot.tokens import TokenCache
from skills.connectors.registry import Connectors, build_connectors
from skills.notifier import Notifier
from skills.repair_dispatch.catalog import Catalog
from skills.repair_dispatch.dispatch import RepairDispatch, RepairSettings
from skills.repair_dispatch.intake import Tickets
from skills.renewal.service import Renewals, RenewalSettings
from skills.review_remediation.service import Reviews, ReviewSettings

log = logging.getLogger(__name__)

Document = dict[str, Any]


@dataclass
class SkillServices:
    """What the business skills share with their jobs and API."""

    settings: Settings
    db: AsyncDatabase[Document]
    redis: Redis
    connectors: Connectors
    notifier: Notifier
    tickets: Tickets
    catalog: Catalog
    repair: RepairDispatch
    renewals: Renewals
    reviews: Reviews
    # Whether the repair form dispatches (engineer, ServiceNow, to-do) or only opens the
    # ticket for an agent, as before: on when any connector is configured, or repair.dispatch.
    repair_dispatch: bool = True


SKILL_SERVICES = web.AppKey("skill_services", SkillServices)


def build_services(
    settings: Settings, db: AsyncDatabase[Document], redis: Redis, http: aiohttp.ClientSession, tokens: TokenCache, gateway_url: str,
    *, templates: Templates,
) -> SkillServices:
    connectors = build_connectors(settings.section("connectors"), http, gateway_url=gateway_url, simulator=settings.simulator, tokens=tokens)
    notifier = Notifier()
    tickets = Tickets(db)
    catalog = Catalog(db)
    repair = RepairDispatch(
        db["tickets"], catalog, connectors, notifier, redis,
        qr_dir=Path(settings.data_dir) / "qr", public_url=gateway_url,
        settings=RepairSettings.from_section(settings.section("repair")),
    )
    renewals = Renewals(db, redis, notifier, connectors, settings=RenewalSettings.from_section(settings.section("renewal")))
    reviews = Reviews(db, redis, templates, connectors, notifier, settings=ReviewSettings.from_section(settings.section("reviews")))
    dispatch = bool(settings.section("repair").get("dispatch", bool(connectors.items)))
    return SkillServices(settings, db, redis, connectors, notifier, tickets, catalog, repair, renewals, reviews, dispatch)


def setup(app: web.Application, role: str = "all") -> None:
    """Mount the skills' API and run their jobs; append after the preferences' setup."""
    from skills.api import routes

    if role in ("all", "web"):
        app.add_routes(routes())
    app.cleanup_ctx.append(_ctx(role))


def _ctx(role: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from bot.app import _every  # here: bot.app imports this module
        from bot.runtime import RUNTIME
        from preferences.api import SERVICES

        svc = app.get(SKILL_SERVICES)
        if svc is None:  # a gateway built without the business services
            yield
            return
        if SERVICES in app:
            svc.notifier.bind(app[SERVICES].engine)
        await svc.repair.ensure_indexes()
        await svc.renewals.ensure_indexes()
        await svc.reviews.ensure_indexes()
        svc.reviews.nlu = app[RUNTIME].nlu  # built after the services; reviews use it as a second opinion
        if svc.settings.simulator:
            from skills.demo import load_demo

            await load_demo(svc.db)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if role in ("all", "worker"):
            rv = svc.settings.section("reviews")
            jobs: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
                ("repair-retry", float(svc.settings.section("repair").get("retry_check_s", 5.0)), svc.repair.retry_due),
                ("reviews-process", float(rv.get("process_interval_s", 1.0)), svc.reviews.process_new),
                ("reviews-pull", float(rv.get("pull_interval_s", 300.0)), svc.reviews.pull_all),
                ("reviews-retry", float(rv.get("retry_interval_s", 60.0)), svc.reviews.retry_pending),
                ("reviews-overdue", float(rv.get("overdue_interval_s", 300.0)), svc.reviews.track_overdue),
            ]
            renewal = svc.settings.section("renewal")
            if renewal.get("daily", True):  # tests drive the scan themselves, on their own clock
                jobs.append(("renewal-daily", float(renewal.get("check_interval_s", 60.0)), svc.renewals.run_daily))
            metrics = app[RUNTIME].metrics
            tasks = [asyncio.create_task(_every(interval, job, stop, metrics), name=name) for name, interval, job in jobs]
        yield
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return ctx
