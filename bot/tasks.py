"""Background tasks owned by the app's lifetime: periodic jobs and their shutdown.

Every package hands the composition root a list of :class:`Job`; the root starts them in
one :class:`BackgroundTasks` and stops them all when the app shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from bot.logs import Outage
from bot.metrics import Metrics

log = logging.getLogger(__name__)

# A step returns True when it left work behind: it runs again at once instead of waiting.
Step = Callable[[], Awaitable[bool | None | object]]


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic step: run every ``interval_s`` seconds until the app stops, the first
    time after ``delay_s``."""

    name: str
    interval_s: float
    step: Step
    delay_s: float = 0.0


async def periodic(job: Job, stop: asyncio.Event, metrics: Metrics | None = None) -> None:
    """Run ``job.step`` until ``stop``; a failing step is retried next interval, its
    outage logged once when it starts and once when it ends. Each run's duration goes
    to ``kefu_job_seconds``."""
    outage = Outage(log, f"background job {job.name}")
    if job.delay_s > 0 and await _stopped_within(stop, job.delay_s):
        return
    while not stop.is_set():
        try:
            started = time.perf_counter()
            more = await job.step()
            if metrics is not None:
                metrics.job_seconds.labels(job.name).observe(time.perf_counter() - started)
            outage.ok()
            if more is True:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
        await _stopped_within(stop, job.interval_s)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


class BackgroundTasks:
    """Tasks started together and stopped together: ``stop`` is set, then all are cancelled."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.stop = asyncio.Event()
        self.metrics = metrics
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, name: str, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    def start_jobs(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self.start(job.name, periodic(job, self.stop, self.metrics))

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
