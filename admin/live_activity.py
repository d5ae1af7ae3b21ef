"""The notification-activity dashboard, live: open pages follow the engine's counts.

The engine announces each batch's counts on :data:`preferences.activity_counts.CHANGED`;
the console's live hub relays that channel here (:class:`~admin.live.ChannelWatch`). A
burst of announcements (a campaign sends in batches of a thousand) is gathered for
:data:`GATHER_S`, then each distinct view of the open pages (period, topic, channel) is
summed once, from the stored figures plus the live counts, and the same frame goes to
every page showing that view: the cost follows the views, not the pages, and no page
reads anything itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from admin.live import QUEUE_DEPTH, Frame, LiveHub
from preferences.activity import ActivityFilter, NotificationActivity
from preferences.activity_counts import CHANGED

log = logging.getLogger(__name__)

#: How long announcements are gathered before the views are summed again.
GATHER_S = 0.5


@dataclass(frozen=True, slots=True)
class View:
    """What one page shows: the same view is summed once for all its pages."""

    since: float
    topic: str
    channel: str
    hourly: bool


@dataclass(eq=False)
class ActivitySubscription:
    view: View
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))


class ActivityWatch:
    """Relays the activity counts' announcements to the open dashboards of this process."""

    channel = CHANGED

    def __init__(self, activity: NotificationActivity) -> None:
        self.activity = activity
        self.subscriptions: set[ActivitySubscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def subscribe(self, f: ActivityFilter, *, hourly: bool) -> ActivitySubscription:
        sub = ActivitySubscription(View(f.since, f.topic, f.channel, hourly))
        self.subscriptions.add(sub)
        self.changed(b"")  # what changed between the page's render and now
        return sub

    def unsubscribe(self, sub: ActivitySubscription) -> None:
        self.subscriptions.discard(sub)

    @property
    def active(self) -> bool:
        return bool(self.subscriptions)

    def changed(self, data: bytes) -> None:
        if not self.subscriptions:
            return  # nobody watching: nothing to read
        if self._task is not None and not self._task.done():
            self._again = True  # the running refresh sums once more when it is done
            return
        self._task = asyncio.create_task(self._refresh(), name="console-live-activity")

    def resync(self) -> None:
        self.changed(b"")  # announcements may be lost: sum the views again

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for sub in list(self.subscriptions):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscriptions.clear()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(GATHER_S)
            self._again = False
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The pages keep what they show; the next announcement tries again.
                log.warning("console live: activity counts not read (%s)", type(exc).__name__)
            if not self._again:
                return

    async def publish(self) -> None:
        """Sum each view once and hand the frame to every page showing it."""
        views: dict[View, list[ActivitySubscription]] = {}
        for sub in list(self.subscriptions):
            views.setdefault(sub.view, []).append(sub)
        until = time.time() + 3600  # records made after the page opened count too
        for view, subs in views.items():
            summary = await self.activity.summary(ActivityFilter(view.since, until, view.topic, view.channel), hourly=view.hourly)
            frame = Frame({"type": "activity", "sent_at": time.time(), **_payload(summary)})
            for sub in subs:
                try:
                    sub.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    log.warning("console live: a dashboard fell behind; update dropped")


def _payload(summary: dict[str, Any]) -> dict[str, Any]:
    # The page updates its tiles, chart and tables from these; the period "at"s match the
    # ones it drew its chart with.
    return {k: summary[k] for k in ("totals", "series", "topics", "channels")} | {"reasons": [list(r) for r in summary["reasons"]]}


def watch_activity(hub: LiveHub, activity: NotificationActivity | None) -> None:
    """Have the console's hub relay the activity counts (when preferences are configured)."""
    if activity is not None:
        hub.watch(ActivityWatch(activity))


def activity_watch(hub: LiveHub) -> ActivityWatch | None:
    watch = hub.watches.get(CHANGED)
    return watch if isinstance(watch, ActivityWatch) else None

