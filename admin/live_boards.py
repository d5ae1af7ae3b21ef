"""The carrier, repair-operations, data-requests and digest-schedule boards, live.

The owners of the data announce their writes: the review skill on
:data:`skills.review_remediation.service.CHANGED` (the carrier counters moved, a review
behind them was resolved or flagged), the tickets' owner on
:data:`skills.repair_dispatch.tickets.CHANGED` (a ticket opened, a step recorded, a status
changed), the data-rights service on :data:`preferences.data_rights.CHANGED` (an export or
erasure requested, built, sent, done), the notification engine on
:data:`preferences.engine.SCHEDULE_CHANGED` (a notification queued for a digest or held,
a digest or held message sent) and the preference store on
:data:`preferences.store.LAYERS_CHANGED` (a marketer edited the defaults: digest times).
The console's live hub relays those channels here (:class:`~admin.live.ChannelWatch`);
per burst of announcements each board is read once and its part rendered once per
reader (language, time zone, and what the page picked: the carrier whose reviews it
lists), from the same template fragment the page itself was rendered with; the frame
carries that HTML and the page swaps its board for it. What a board reads per reader
(the carrier's reviews, the calendar's days in the reader's time zone) is read once per
distinct value in a round.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from admin.live import Frame, LiveHub
from admin.live_watch import GatheredWatch, Subscription
from admin.rendering import Pages
from admin.zones import zone
from preferences.data_rights import CHANGED as DATA_REQUESTS_CHANGED
from preferences.data_rights import DataRights
from preferences.engine import SCHEDULE_CHANGED
from preferences.model import Topic
from preferences.provenance import BUILTIN, DEFAULT, effective
from preferences.services import PreferenceServices
from preferences.store import DEFAULT_LAYER, LAYERS_CHANGED
from skills.renewal.service import Renewals
from skills.repair_dispatch.tickets import CHANGED as TICKETS_CHANGED
from skills.repair_dispatch.tickets import Tickets
from skills.review_remediation.service import CHANGED as CARRIERS_CHANGED
from skills.review_remediation.service import Reviews

DAY = 86_400.0
#: How often an open repair board is read again without any write (tickets turn overdue).
OVERDUE_CHECK_S = 300.0
#: How often an open schedule is read again without any write (digests fall due and go
#: out, held messages are released, the renewal scan reminds; a new day begins).
SCHEDULE_CHECK_S = 300.0
#: How long the schedule gathers announcements: a campaign folds notifications into
#: digests in batches of a thousand, and the calendar's counts (two aggregations over
#: the week's digests and held messages) need not follow each batch.
SCHEDULE_GATHER_S = 2.0
#: The carrier chart's span.
CHART_WEEKS = 12
Loader = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a board: its words and times are theirs; ``subject`` is what the page
    picked (the carrier whose reviews it lists), empty if nothing."""

    language: str
    time_zone: str
    subject: str = ""


Detail = Callable[[Reader], Awaitable[dict[str, Any]]]


class Alias:
    """Another channel whose announcements a board follows too (the hub relays one
    watch per channel)."""

    def __init__(self, channel: str, board: BoardWatch) -> None:
        self.channel = channel
        self.board = board

    @property
    def active(self) -> bool:
        return False  # the board itself keeps the hub listening

    def changed(self, data: bytes) -> None:
        self.board.changed(data)

    def resync(self) -> None:
        pass  # the board's own resync reads again

    def close(self) -> None:
        pass


class BoardWatch(GatheredWatch[Reader]):
    """One board: the data read once per announcement burst, rendered per reader; with
    ``every_s``, also that often while pages are open (what changes with time alone: a
    ticket open for more than a day is overdue without any write)."""

    def __init__(
        self, name: str, channel: str, template: str, load: Loader, pages: Pages, *, every_s: float | None = None,
        detail: Detail | None = None, gather_s: float | None = None,
    ) -> None:
        super().__init__()
        if gather_s is not None:
            self.gather_s = gather_s
        self.name = name
        self.channel = channel
        self.template = template
        self.what = f"{name} board"
        self.load = load
        self.detail = detail
        self.pages = pages
        self.every_s = every_s
        self._context: dict[str, Any] = {}
        self._details: dict[tuple[str, str], dict[str, Any]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def subscribe(self, view: Reader) -> Subscription[Reader]:
        sub = super().subscribe(view)
        if self.every_s is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.every_s, self._tick)
        return sub

    def _tick(self) -> None:
        self._timer = None
        if self.subscriptions and self.every_s is not None:
            self.changed(b"")
            self._timer = asyncio.get_running_loop().call_later(self.every_s, self._tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().close()

    async def prepare(self) -> None:
        self._context = await self.load()
        self._details = {}

    async def frame(self, view: Reader) -> Frame:
        context = self._context
        if self.detail is not None:
            # Once per time zone and subject this round, whatever the languages.
            key = (view.time_zone, view.subject)
            if key not in self._details:
                self._details[key] = await self.detail(view)
            context = {**context, **self._details[key]}
        html = self.pages.fragment(self.template, view.language, await zone(view.time_zone), **context)
        return Frame({"type": "board", "board": self.name, "sent_at": time.time(), "html": html})


async def repair_board(tickets: Tickets) -> dict[str, Any]:
    """What the repair page shows: tickets needing attention and the engineers' load."""
    now = time.time()
    return {"tickets": await tickets.needing_attention(overdue_before=now - DAY), "load": await tickets.engineer_load(), "now": now}


async def data_requests_board(rights: DataRights) -> dict[str, Any]:
    return {"rows": await rights.requests()}


async def carriers_board(reviews: Reviews) -> dict[str, Any]:
    """The carrier board: the table and the weekly breach-rate chart."""
    weeks = await reviews.carrier_weeks(time.time() - CHART_WEEKS * 7 * DAY)
    all_weeks = sorted({w["week"] for v in weeks.values() for w in v})
    rate = {(k, w["week"]): w["breach_rate"] for k, v in weeks.items() for w in v}
    chart = {
        "labels": [dt.datetime.fromtimestamp(w, dt.timezone.utc).strftime("%m-%d") for w in all_weeks],
        "series": [[k, [round(rate[(k, w)] * 100, 1) if (k, w) in rate else None for w in all_weeks]] for k in sorted(weeks)],
    }
    return {"board": await reviews.carrier_performance(), "chart": chart}


async def carrier_reviews(reviews: Reviews, carrier: str) -> dict[str, Any]:
    """The reviews behind the picked carrier's figures (none picked: none)."""
    return {"selected": carrier, "behind": await reviews.reviews_of(carrier) if carrier else []}


async def schedule_settings(svc: PreferenceServices, renewals: Renewals | None) -> dict[str, Any]:
    """The schedule's settings: each topic's digest time, quiet hours, the renewal scan."""
    values = effective([(BUILTIN, dict(svc.prefs.book.defaults)), (DEFAULT, await svc.prefs.get_layer(DEFAULT_LAYER))])
    digest_times = [{"topic": t.value, "frequency": values[f"topics.{t.value}.frequency"], "at": values[f"topics.{t.value}.at"],
                     "weekday": values[f"topics.{t.value}.weekday"]} for t in Topic]
    return {"digest_times": digest_times, "quiet": values.get("quiet_hours"),
            "scan_at": renewals.settings.run_at if renewals is not None else None,
            "offsets": renewals.settings.offsets if renewals is not None else []}


async def schedule_days(svc: PreferenceServices, renewals: Renewals | None, tz: dt.tzinfo) -> dict[str, Any]:
    """The next 7 days from today in ``tz``: digests due, held messages released,
    renewal reminders."""
    today = dt.datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today.timestamp(), (today + dt.timedelta(days=7)).timestamp()
    days: list[dict[str, Any]] = [
        {"at": (today + dt.timedelta(days=i)).timestamp(), "digests": [], "held": 0, "renewals": []} for i in range(7)
    ]

    def day_of(ts: float) -> dict[str, Any] | None:
        i = int((ts - start) // DAY)
        return days[i] if 0 <= i < 7 else None

    for due, n in await svc.engine.digests.due_between(start, end):
        if (d := day_of(due)) is not None:
            d["digests"].append({"at": due, "n": n})
    for due, n in await svc.engine.held_between(start, end):
        if (d := day_of(due)) is not None:
            d["held"] += n
    for day, offset, n in await renewals.reminders_due(start, end) if renewals is not None else []:
        if (d := day_of(day)) is not None:
            d["renewals"].append({"offset": offset, "n": n})
    return {"days": days}


REPAIR = "repair"
DATA_REQUESTS = "data-requests"
CARRIERS = "carriers"
SCHEDULE = "schedule"


def watch_boards(
    hub: LiveHub, pages: Pages, tickets: Tickets | None, rights: DataRights | None, reviews: Reviews | None,
    preferences: PreferenceServices | None = None, renewals: Renewals | None = None,
) -> None:
    """Have the console's hub relay the boards whose owners this gateway runs."""
    if reviews is not None:
        hub.watch(BoardWatch(CARRIERS, CARRIERS_CHANGED, "marketing/_carriers_board.html", lambda: carriers_board(reviews), pages,
                             detail=lambda reader: carrier_reviews(reviews, reader.subject)))
    if preferences is not None:
        svc = preferences

        async def days(reader: Reader) -> dict[str, Any]:
            return await schedule_days(svc, renewals, await zone(reader.time_zone))

        schedule = BoardWatch(SCHEDULE, SCHEDULE_CHANGED, "marketing/_schedule_board.html", lambda: schedule_settings(svc, renewals),
                              pages, every_s=SCHEDULE_CHECK_S, detail=days, gather_s=SCHEDULE_GATHER_S)
        hub.watch(schedule)
        hub.watch(Alias(LAYERS_CHANGED, schedule))
    if tickets is not None:
        hub.watch(BoardWatch(REPAIR, TICKETS_CHANGED, "marketing/_repair_board.html", lambda: repair_board(tickets), pages,
                             every_s=OVERDUE_CHECK_S))
    if rights is not None:
        hub.watch(BoardWatch(DATA_REQUESTS, DATA_REQUESTS_CHANGED, "marketing/_data_requests_board.html",
                             lambda: data_requests_board(rights), pages))


def board_watch(hub: LiveHub, name: str) -> BoardWatch | None:
    for watch in hub.watches.values():
        if isinstance(watch, BoardWatch) and watch.name == name:
            return watch
    return None
