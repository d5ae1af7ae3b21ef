"""The preferences package's parts, built once by the composition root.

:func:`build_preferences` takes what the package needs in its arguments (the database,
Redis, the outbox, the configured channels) and returns :class:`PreferenceServices`;
:func:`jobs` lists the background work a worker process runs (due list, digest settle).
The package never imports the composition root.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.outbox import Outbox
from bot.store import MessageStore
from bot.tasks import Job
from channels.base import Channel
from preferences.activity import NotificationActivity
from preferences.clock import Clock
from preferences.data_rights import DataRights, TicketRecords
from preferences.engine import NotificationEngine
from preferences.model import ChannelBook
from preferences.render import Renderer
from preferences.store import PreferenceStore
from preferences.template_versions import TemplateVersions

_MASKED = ("phone", "mobile", "tel", "telephone", "id_number", "id_card")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreferenceServices:
    """What the API handlers, chat skills and jobs of the preferences package use."""

    prefs: PreferenceStore
    engine: NotificationEngine
    rights: DataRights
    renderer: Renderer
    templates: TemplateVersions
    activity: NotificationActivity


SERVICES = web.AppKey("preferences", PreferenceServices)


async def build_preferences(
    section: Mapping[str, Any],
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    outbox: Outbox,
    message_store: MessageStore,
    *,
    clock: Clock,
    tickets: TicketRecords,
    channels: Mapping[str, type[Channel]],
    configured: Callable[[str, str], bool],
    default_accounts: Mapping[str, str],
    public_url: str,
    streams: tuple[str, ...],
) -> PreferenceServices:
    """Store, engine and data rights, indexes ensured.

    Args:
        section: the ``preferences`` section of ``kefu.yml``.
        channels: the channel registry (name -> class): which channels a customer may
            choose and how each names its recipient.
        configured: whether a channel account is configured in this gateway.
        default_accounts: per channel, the account used when an address names none.
        public_url: where this gateway is reachable (links in exports).
        tickets: the tickets' owner, which an export reads and an erasure anonymises.
        streams: the Redis streams an erasure scrubs.
    """
    book = ChannelBook.of(channels)
    prefs = PreferenceStore(db, clock, redis=redis, book=book)
    await prefs.ensure_indexes()
    override = section.get("templates_dir")
    renderer = await asyncio.to_thread(functools.partial(Renderer, Path(override) if override else None, book=book))
    accounts = dict(section.get("accounts") or {})
    for name, account in default_accounts.items():
        accounts.setdefault(name, account)
    engine = NotificationEngine(
        db, redis, outbox, prefs, renderer, clock=clock, message_store=message_store,
        channel_ok=configured, default_accounts=accounts,
    )
    await engine.ensure_indexes()
    secret = section.get("link_secret")
    rights = DataRights(
        db, redis, prefs, engine, tickets, secret=str(secret).encode() if secret else None,
        public_url=str(section.get("public_url") or public_url), clock=clock,
        mask_fields=section.get("mask_fields") or _MASKED, streams=streams,
        link_ttl_s=float(section.get("link_ttl_s", 72 * 3600)),
    )
    templates = TemplateVersions(db, redis, renderer)
    await templates.ensure_indexes()
    try:
        await templates.sync(force=True)  # the templates marketers edited, from the first message on
    except (RedisError, OSError) as exc:
        # The gateway starts without Redis (its webhooks answer 503 meanwhile); the
        # every-process sync job loads the edited templates once Redis answers.
        log.warning("preferences: edited templates not loaded at start (%s); the sync job retries", type(exc).__name__)
    activity = NotificationActivity(db, engine, time_zone=str(section.get("time_zone", "Asia/Shanghai")),
                                    window_s=float(section.get("activity_window_h", 6)) * 3600.0)
    await activity.ensure_indexes()
    return PreferenceServices(prefs, engine, rights, renderer, templates, activity)


def jobs(
    section: Mapping[str, Any],
    engine: NotificationEngine,
    rights: DataRights,
    handled: Callable[[str], Awaitable[bool]],
    activity: NotificationActivity | None = None,
) -> list[Job]:
    """The due list, the digest settle, chat data exports and the activity counts the
    console's dashboard reads, each its own task so none waits on another. ``handled``
    tells whether an inbound message's replies are queued: an export's link follows the
    acknowledgement of its request."""
    interval = float(section.get("due_interval_s", 1.0))
    out = [
        Job("prefs-due", interval, _due_step(engine)),
        Job("prefs-settle", interval, lambda: _settle_step(engine)),
        Job("prefs-exports", float(section.get("export_interval_s", 0.2)), lambda: rights.send_requested(handled)),
    ]
    if activity is not None:
        out.append(Job("prefs-activity", float(section.get("activity_interval_s", 60.0)), lambda: _rollup_step(activity, float(section.get("activity_budget_s", 20.0)))))
    return out


async def _rollup_step(activity: NotificationActivity, budget_s: float) -> bool:
    # A long recount (the first one) goes on at once where it stopped, the lock let go
    # in between: each round holds it for about ``budget_s``.
    return await activity.rollup(budget_s=budget_s) >= 0 and await activity.recounting()


def every_process_jobs(services: PreferenceServices) -> list[Job]:
    """What web and worker processes alike run: the reload of templates edited in the
    console (any process may render a notification), and the segment samples' refresh
    (one process at a time, under a Redis lock), so no search waits for it."""
    return [
        Job("prefs-templates", 1.0, lambda: _sync_step(services.templates)),
        Job("prefs-segment-samples", 30.0, lambda: _samples_step(services.prefs)),
    ]


async def _samples_step(prefs: PreferenceStore) -> bool:
    await prefs.segment_samples.refresh()
    return False


async def _sync_step(templates: TemplateVersions) -> bool:
    await templates.sync()
    return False


def _due_step(engine: NotificationEngine) -> Callable[[], Any]:
    synced = False

    async def step() -> bool:
        nonlocal synced
        if not synced:  # in the loop, not at startup: Redis or MongoDB may be down
            await engine.resync()
            synced = True
        await engine.run_all_due(settle=False)  # the settle task follows behind
        return False

    return step


async def _settle_step(engine: NotificationEngine) -> bool:
    # A batch at a time: settling one takes seconds on the embedded store, and held
    # messages and the next digests must not wait behind it.
    return bool(await engine.settle(limit=1))
