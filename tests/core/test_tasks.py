"""Periodic background jobs: interval, first delay, stop."""

from __future__ import annotations

import asyncio

from bot.tasks import Job, periodic


async def test_a_delayed_job_first_runs_after_its_delay_then_every_interval() -> None:
    loop = asyncio.get_running_loop()
    runs: list[float] = []

    async def step() -> None:
        runs.append(loop.time())

    stop = asyncio.Event()
    start = loop.time()
    task = asyncio.create_task(periodic(Job("probe", 0.05, step, delay_s=0.3), stop))
    await asyncio.sleep(0.2)
    assert runs == []  # still inside its delay
    await asyncio.sleep(0.3)
    stop.set()
    await task
    assert runs and runs[0] - start >= 0.3
    assert len(runs) >= 2  # then every interval


async def test_a_job_stopped_during_its_delay_never_runs() -> None:
    runs: list[int] = []

    async def step() -> None:
        runs.append(1)

    stop = asyncio.Event()
    task = asyncio.create_task(periodic(Job("probe", 0.01, step, delay_s=5.0), stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1.0)
    assert runs == []
