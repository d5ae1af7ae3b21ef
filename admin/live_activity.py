"""The notification-activity dashboard, live: open pages follow the engine's counts.

The engine announces each batch's counts on :data:`preferences.activity_counts.CHANGED`;
the console's live hub relays that channel here (:class:`~admin.live.ChannelWatch`). A
burst of announcements (a campaign sends in batches of a thousand) is gathered for
:data:`~admin.live_watch.GATHER_S`, then each distinct view of the open pages (period, topic, channel) is
summed once, from the stored figures plus the live counts, and the same frame goes to
every page showing that view: the cost follows the views, not the pages, and no page
reads anything itself.
"""

from __future__ import annotations

from typing import Any

import time
from dataclasses import dataclass

from admin.live import Frame, LiveHub
from admin.live_watch import GatheredWatch, Subscription
from preferences.activity import ActivityFilter, NotificationActivity
from preferences.activity_counts import CHANGED


@dataclass(frozen=True, slots=True)
class View:
    """What one page shows: the same view is summed once for all its pages."""

    since: float
    topic: str
    channel: str
    hourly: bool


ActivitySubscription = Subscription[View]


class ActivityWatch(GatheredWatch[View]):
    """Relays the activity counts' announcements to the open dashboards of this process."""

    channel = CHANGED
    what = "activity dashboard"

    def __init__(self, activity: NotificationActivity) -> None:
        super().__init__()
        self.activity = activity

    def subscribe_filter(self, f: ActivityFilter, *, hourly: bool) -> ActivitySubscription:
        return self.subscribe(View(f.since, f.topic, f.channel, hourly))

    async def frame(self, view: View) -> Frame:
        until = time.time() + 3600  # records made after the page opened count too
        summary = await self.activity.summary(ActivityFilter(view.since, until, view.topic, view.channel), hourly=view.hourly)
        return Frame({"type": "activity", "sent_at": time.time(), **_payload(summary)})


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

