"""The carrier, repair-operations and data-requests boards, live.

The owners of the data announce their writes: the review skill on
:data:`skills.review_remediation.service.CHANGED` (the carrier counters moved), the tickets' owner on
:data:`skills.repair_dispatch.tickets.CHANGED` (a ticket opened, a step recorded, a status
changed), the data-rights service on :data:`preferences.data_rights.CHANGED` (an export or
erasure requested, built, sent, done). The console's live hub relays those channels here
(:class:`~admin.live.ChannelWatch`); per burst of announcements each board is read once
and its table rendered once per language and time zone of the open pages, from the same
template fragment the page itself was rendered with; the frame carries that HTML and
the page swaps its board for it.
"""

from __future__ import annotations

import asyncio
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
from skills.repair_dispatch.tickets import CHANGED as TICKETS_CHANGED
from skills.repair_dispatch.tickets import Tickets
from skills.review_remediation.service import CHANGED as CARRIERS_CHANGED
from skills.review_remediation.service import Reviews

DAY = 86_400.0
#: How often an open repair board is read again without any write (tickets turn overdue).
OVERDUE_CHECK_S = 300.0
Loader = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a board: its words and times are theirs."""

    language: str
    time_zone: str


class BoardWatch(GatheredWatch[Reader]):
    """One board: the data read once per announcement burst, rendered per reader; with
    ``every_s``, also that often while pages are open (what changes with time alone: a
    ticket open for more than a day is overdue without any write)."""

    def __init__(self, name: str, channel: str, template: str, load: Loader, pages: Pages, *, every_s: float | None = None) -> None:
        super().__init__()
        self.name = name
        self.channel = channel
        self.template = template
        self.what = f"{name} board"
        self.load = load
        self.pages = pages
        self.every_s = every_s
        self._context: dict[str, Any] = {}
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

    async def frame(self, view: Reader) -> Frame:
        html = self.pages.fragment(self.template, view.language, await zone(view.time_zone), **self._context)
        return Frame({"type": "board", "board": self.name, "sent_at": time.time(), "html": html})


async def repair_board(tickets: Tickets) -> dict[str, Any]:
    """What the repair page shows: tickets needing attention and the engineers' load."""
    now = time.time()
    return {"tickets": await tickets.needing_attention(overdue_before=now - DAY), "load": await tickets.engineer_load(), "now": now}


async def data_requests_board(rights: DataRights) -> dict[str, Any]:
    return {"rows": await rights.requests()}


async def carriers_board(reviews: Reviews) -> dict[str, Any]:
    """The carrier board's table (the weekly chart and the reviews behind a figure are
    read with the page)."""
    return {"board": await reviews.carrier_performance()}


REPAIR = "repair"
DATA_REQUESTS = "data-requests"
CARRIERS = "carriers"


def watch_boards(hub: LiveHub, pages: Pages, tickets: Tickets | None, rights: DataRights | None, reviews: Reviews | None) -> None:
    """Have the console's hub relay the boards whose owners this gateway runs."""
    if reviews is not None:
        hub.watch(BoardWatch(CARRIERS, CARRIERS_CHANGED, "marketing/_carriers_board.html", lambda: carriers_board(reviews), pages))
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
