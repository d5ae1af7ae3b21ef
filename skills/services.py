"""The business skills' shared services and their background jobs.

:func:`build_services` is called once by the composition root with everything the
services need (the notifier over the notification engine, the NLU client reviews use as
a second opinion); :func:`start_services` creates indexes and loads the demo data;
:func:`jobs` lists the periodic work a worker process runs: repair retries, the renewal
scan, marketplace pulls and the review resolution tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.config import Settings
from bot.mongo import Document
from bot.tasks import Job
from bot.templates import Templates
from skills.connectors.registry import Connectors, build_connectors
from skills.connectors.todo import TodoApiFactory
from skills.notifier import Notifier
from skills.repair_dispatch.cases import CaseLibrary
from skills.repair_dispatch.catalog import Catalog
from skills.repair_dispatch.assign import RepairDispatch, RepairSettings
from skills.repair_dispatch.tickets import Tickets
from skills.renewal.service import Renewals, RenewalSettings
from skills.review_remediation.chat import ComplaintCases
from skills.review_remediation.service import Reviews, ReviewSettings


@dataclass(frozen=True, slots=True)
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
    cases: ComplaintCases
    # Whether the repair form dispatches (engineer, ServiceNow, to-do) or only opens the
    # ticket for an agent: on when any connector is configured, or repair.dispatch.
    repair_dispatch: bool = True


SKILL_SERVICES = web.AppKey("skill_services", SkillServices)


def build_services(
    settings: Settings,
    db: AsyncDatabase[Document],
    redis: Redis,
    http: aiohttp.ClientSession,
    gateway_url: str,
    *,
    templates: Templates,
    notifier: Notifier,
    tickets: Tickets,
    nlu: Any = None,
    todo_api: TodoApiFactory | None = None,
) -> SkillServices:
    connectors = build_connectors(
        settings.section("connectors"), http, gateway_url=gateway_url, simulator=settings.simulator, todo_api=todo_api
    )
    catalog = Catalog(db)
    repair = RepairDispatch(
        tickets, catalog, connectors, notifier, redis,
        qr_dir=Path(settings.data_dir) / "qr", public_url=gateway_url,
        settings=RepairSettings.from_section(settings.section("repair")), cases=CaseLibrary(db),
    )
    renewals = Renewals(db, redis, notifier, connectors, settings=RenewalSettings.from_section(settings.section("renewal")))
    reviews = Reviews(
        db, redis, templates, connectors, notifier, settings=ReviewSettings.from_section(settings.section("reviews")), nlu=nlu
    )
    dispatch = bool(settings.section("repair").get("dispatch", bool(connectors.items)))
    return SkillServices(
        settings, db, redis, connectors, notifier, tickets, catalog, repair, renewals, reviews, ComplaintCases(db), dispatch
    )


async def start_services(svc: SkillServices) -> None:
    """Indexes, and in simulator mode the demo data."""
    await svc.tickets.ensure_indexes()
    await svc.repair.ensure_indexes()
    await svc.renewals.ensure_indexes()
    await svc.reviews.ensure_indexes()
    await svc.cases.ensure_indexes()
    if svc.settings.simulator:
        from skills.demo import load_demo

        await load_demo(svc.db)


def jobs(svc: SkillServices) -> list[Job]:
    """The periodic work of the business skills, for worker processes."""
    repair = svc.settings.section("repair")
    rv = svc.settings.section("reviews")
    out = [
        Job("repair-retry", float(repair.get("retry_check_s", 5.0)), svc.repair.retry_due),
        Job("reviews-process", float(rv.get("process_interval_s", 1.0)), svc.reviews.process_new),
        # The first pull waits until the gateway listens: in simulator mode the
        # marketplaces' fake APIs are served by the gateway itself.
        Job("reviews-pull", float(rv.get("pull_interval_s", 300.0)), svc.reviews.pull_all, delay_s=float(rv.get("pull_delay_s", 5.0))),
        Job("reviews-retry", float(rv.get("retry_interval_s", 60.0)), svc.reviews.retry_pending),
        Job("reviews-overdue", float(rv.get("overdue_interval_s", 300.0)), svc.reviews.track_overdue),
    ]
    renewal = svc.settings.section("renewal")
    if renewal.get("daily", True):  # tests drive the scan themselves, on their own clock
        out.append(Job("renewal-daily", float(renewal.get("check_interval_s", 60.0)), svc.renewals.run_daily))
    return out
