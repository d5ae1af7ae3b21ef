"""The common part of the live dashboards (:class:`~admin.live.ChannelWatch`): open pages
subscribe with what they show; announcements on the watch's Redis channel are gathered
for :data:`GATHER_S`, then each distinct view is read and encoded once and the same frame
goes to every page showing it. The cost follows the views, not the pages, and no page
reads anything itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from admin.live import QUEUE_DEPTH, Frame

log = logging.getLogger(__name__)

#: How long announcements are gathered before the views are read again.
GATHER_S = 0.5

V = TypeVar("V", bound=Hashable)


@dataclass(eq=False)
class Subscription(Generic[V]):
    view: V
    queue: asyncio.Queue[Frame | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))


class GatheredWatch(Generic[V]):
    """Relays one channel's announcements to the open pages of this process; subclasses
    say how a view is read (:meth:`frame`)."""

    channel: str
    what = "dashboard"  # in log lines
    gather_s = GATHER_S

    def __init__(self) -> None:
        self.subscriptions: set[Subscription[V]] = set()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def subscribe(self, view: V) -> Subscription[V]:
        sub = Subscription(view)
        self.subscriptions.add(sub)
        self.changed(b"")  # what changed between the page's render and now
        return sub

    def unsubscribe(self, sub: Subscription[V]) -> None:
        self.subscriptions.discard(sub)

    @property
    def active(self) -> bool:
        return bool(self.subscriptions)

    def changed(self, data: bytes) -> None:
        if not self.subscriptions:
            return  # nobody watching: nothing to read
        if self._task is not None and not self._task.done():
            self._again = True  # the running refresh reads once more when it is done
            return
        self._task = asyncio.create_task(self._refresh(), name=f"console-live-{self.what}")

    def resync(self) -> None:
        self.changed(b"")  # announcements may be lost: read the views again

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for sub in list(self.subscriptions):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscriptions.clear()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.gather_s)
            self._again = False
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The pages keep what they show; the next announcement tries again.
                log.warning("console live: %s not read (%s)", self.what, type(exc).__name__)
            if not self._again:
                return

    async def publish(self) -> None:
        """Read each view once and hand the frame to every page showing it."""
        views: dict[V, list[Subscription[V]]] = {}
        for sub in list(self.subscriptions):
            views.setdefault(sub.view, []).append(sub)
        await self.prepare()
        for view, subs in views.items():
            frame = await self.frame(view)
            for sub in subs:
                try:
                    sub.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    log.warning("console live: a %s fell behind; update dropped", self.what)

    async def prepare(self) -> None:
        """What every view of this round shares, read once (nothing by default)."""

    async def frame(self, view: V) -> Frame:
        raise NotImplementedError
