"""The marketers' dashboards: notification activity (with a drill-down), carrier
performance, repair operations, data requests, and the digest schedule with a 7-day
calendar. Read-only pages; the charts draw from JSON embedded in the page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from aiohttp import web

from admin.live import stream
from admin.live_activity import activity_watch
from admin.live_boards import (
    CARRIERS, DATA_REQUESTS, REPAIR, SCHEDULE, Reader, board_watch, carrier_reviews, carriers_board, data_requests_board, repair_board,
    schedule_days, schedule_settings,
)
from admin.marketing import prefs, skills
from admin.roles import MARKETING
from admin.state import ConsoleRoute, console, current_user
from admin.zones import zone
from preferences.activity import OUTCOMES, ActivityFilter
from preferences.model import Topic
from webui.errors import NotFound

DAY = 86_400.0
PERIODS = {"1": 1, "7": 7, "30": 30, "90": 90}


async def _local(request: web.Request) -> dt.tzinfo:
    """The user's time zone."""
    return await zone(current_user(request).time_zone)


def _filter(request: web.Request, days: int) -> ActivityFilter:
    now = time.time()
    topic = request.query.get("topic", "")
    return ActivityFilter(since=now - days * DAY, until=now + 3600, topic=topic if topic in {t.value for t in Topic} else "",
                          channel=request.query.get("channel", "")[:32])


async def activity(request: web.Request) -> web.StreamResponse:
    c = console(request)
    act = prefs(request).activity
    days = PERIODS.get(request.query.get("days", "7"), 7)
    f = _filter(request, days)
    hourly = days == 1
    summary = await act.summary(f, hourly=hourly)
    # Every period of the range, empty ones too: hours in the user's time zone, days as
    # the gateway counts them.
    tz = await _local(request)
    periods: list[float] = [summary["since"]]
    while periods[-1] + (3600.0 if hourly else DAY) < f.until - 3600:
        periods.append(periods[-1] + 3600.0 if hourly else act.day_start(periods[-1] + 30 * 3600.0))
    by_at = {s["at"]: s for s in summary["series"]}
    labels = [dt.datetime.fromtimestamp(p, tz if hourly else act.zone).strftime("%H:00" if hourly else "%m-%d") for p in periods]
    return await c.pages.render(
        request, "marketing/activity.html", summary=summary, f=f, days=days, periods=list(PERIODS), outcomes=OUTCOMES,
        # Every topic and channel has its row, zero or not: the live figures fill them in.
        topics=[t.value for t in Topic], channels=list(prefs(request).prefs.book.classes), rolled_at=await act.last_rollup(),
        zero=dict.fromkeys(OUTCOMES, 0),
        chart={"labels": labels, "at": periods, "series": [[o, [by_at.get(p, {}).get(o, 0) for p in periods]] for o in OUTCOMES]},
    )


async def activity_events(request: web.Request) -> web.StreamResponse:
    """The activity page's live figures as server-sent events (the page's own filter)."""
    c = console(request)
    watch = activity_watch(c.hub)
    if watch is None:
        prefs(request)  # not configured: 404
        raise web.HTTPNotFound()
    days = PERIODS.get(request.query.get("days", "7"), 7)
    f = _filter(request, days)
    try:
        # The page's own first period, so that its figures and the live ones agree.
        since = float(request.query.get("since", ""))
        if f.since - DAY <= since <= f.since + DAY:
            f = dataclasses.replace(f, since=since)
    except ValueError:
        pass
    await c.hub.listening()  # the process may not be reading events while no page is open
    sub = watch.subscribe_filter(f, hourly=days == 1)
    return await stream(request, sub.queue, await zone(current_user(request).time_zone), done=lambda: watch.unsubscribe(sub))


async def activity_list(request: web.Request) -> web.StreamResponse:
    c = console(request)
    days = PERIODS.get(request.query.get("days", "7"), 7)
    f = _filter(request, days)
    outcome = request.query.get("outcome", "")
    rows = await prefs(request).activity.notifications_of(f, outcome if outcome in OUTCOMES else "", limit=200)
    return await c.pages.render(request, "marketing/activity_list.html", rows=rows, f=f, days=days, outcome=outcome)


def _carrier(request: web.Request) -> str:
    """The carrier whose reviews the page lists (none: empty)."""
    return request.query.get("carrier", "")[:64]


async def carriers(request: web.Request) -> web.StreamResponse:
    c = console(request)
    reviews = skills(request).reviews
    return await c.pages.render(request, "marketing/carriers.html",
                                **await carriers_board(reviews), **await carrier_reviews(reviews, _carrier(request)))


async def repair(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return await c.pages.render(request, "marketing/repair.html", **await repair_board(skills(request).tickets))


async def data_requests(request: web.Request) -> web.StreamResponse:
    c = console(request)
    return await c.pages.render(request, "marketing/data_requests.html", **await data_requests_board(prefs(request).rights))


async def board_events(request: web.Request, name: str, subject: str = "") -> web.StreamResponse:
    """A live board's updates as server-sent events, in the user's words and time zone
    (``subject``: what the page picked, the carrier whose reviews it lists)."""
    c = console(request)
    watch = board_watch(c.hub, name)
    if watch is None:
        raise NotFound("this board is not configured on this gateway")
    user = current_user(request)
    await c.hub.listening()  # the process may not be reading events while no page is open
    sub = watch.subscribe(Reader(c.pages.language(request), user.time_zone, subject))
    return await stream(request, sub.queue, await zone(user.time_zone), done=lambda: watch.unsubscribe(sub))


async def carriers_events(request: web.Request) -> web.StreamResponse:
    return await board_events(request, CARRIERS, _carrier(request))


async def repair_events(request: web.Request) -> web.StreamResponse:
    return await board_events(request, REPAIR)


async def data_requests_events(request: web.Request) -> web.StreamResponse:
    return await board_events(request, DATA_REQUESTS)


async def schedule(request: web.Request) -> web.StreamResponse:
    c = console(request)
    svc, renewals = prefs(request), skills(request).renewals
    return await c.pages.render(request, "marketing/schedule.html", **await schedule_settings(svc, renewals),
                                **await schedule_days(svc, renewals, await _local(request)))


async def schedule_events(request: web.Request) -> web.StreamResponse:
    return await board_events(request, SCHEDULE)


ROUTES = (
    ConsoleRoute("GET", "/marketing/activity", activity, MARKETING, "mk_activity"),
    ConsoleRoute("GET", "/marketing/activity/notifications", activity_list, MARKETING, "mk_activity_list"),
    ConsoleRoute("GET", "/marketing/activity/events", activity_events, MARKETING, "mk_activity_events"),
    ConsoleRoute("GET", "/marketing/carriers", carriers, MARKETING, "mk_carriers"),
    ConsoleRoute("GET", "/marketing/carriers/events", carriers_events, MARKETING, "mk_carriers_events"),
    ConsoleRoute("GET", "/marketing/repair", repair, MARKETING, "mk_repair"),
    ConsoleRoute("GET", "/marketing/repair/events", repair_events, MARKETING, "mk_repair_events"),
    ConsoleRoute("GET", "/marketing/data-requests", data_requests, MARKETING, "mk_data_requests"),
    ConsoleRoute("GET", "/marketing/data-requests/events", data_requests_events, MARKETING, "mk_data_requests_events"),
    ConsoleRoute("GET", "/marketing/schedule", schedule, MARKETING, "mk_schedule"),
    ConsoleRoute("GET", "/marketing/schedule/events", schedule_events, MARKETING, "mk_schedule_events"),
)
