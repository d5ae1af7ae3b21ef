"""Background tasks owned by the app's lifetime: periodic jobs and their shutdown.

Every package hands the composition root a list of :class:`Job`; the root starts them in
one :class:`BackgroundTasks` and stops them all when the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# A step returns True when it left work behind: it runs again at once instead of waiting.
Step = Callable[[], Awaitable[bool | None | object]]


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic step: run every ``interval_s`` seconds until the app stops."""

    name: str
    interval_s: float
    step: Step


async def periodic(job: Job, stop: asyncio.Event) -> None:
    """Run ``job.step`` until ``stop``; a failing step is logged and retried next interval."""
    while not stop.is_set():
        try:
            if await job.step() is True:
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed", job.name)
        try:
            await asyncio.wait_for(stop.wait(), job.interval_s)
        except asyncio.TimeoutError:
            pass


class BackgroundTasks:
    """Tasks started together and stopped together: ``stop`` is set, then all are cancelled."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def start_jobs(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self.start(job.name, periodic(job, self.stop))

    async def close(self) -> None:
        self.stop.set()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has finished; their errors are not raised."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
