"""Tell other processes that something changed: one Redis PUBLISH per burst.

The owner of some data (the tickets, the data requests) calls :meth:`Announcer.changed`
after each write; the console's pages that show that data listen on the channel (one
subscription per web process, :mod:`admin.live`) and read it again. ``changed`` never
waits: the publish goes out from a task of its own, once for every write made within
``gather_s`` (a loop over a hundred tickets announces once or twice: at most one
publish per ``gather_s`` and process), so no caller's path gets slower and a Redis
outage costs a log line, not the write. The pages gather announcements for longer
(:data:`admin.live_watch.GATHER_S`): the wait here shows on no page.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class Announcer:
    def __init__(self, redis: Redis, channel: str, *, gather_s: float = 0.25) -> None:
        self.redis = redis
        self.channel = channel
        self.gather_s = gather_s
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.published = 0  # how many went out (tests, metrics)

    def changed(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True  # the pending publish covers it, or one more follows
            return
        try:
            self._task = asyncio.get_running_loop().create_task(self._publish(), name=f"announce {self.channel}")
        except RuntimeError:
            return  # no loop (a synchronous script): nobody is listening either

    async def _publish(self) -> None:
        while True:
            await asyncio.sleep(self.gather_s)
            self._again = False
            try:
                await self.redis.publish(self.channel, b"1")
                self.published += 1
            except (RedisError, OSError) as exc:
                # The pages show what they read last; the next change announces again.
                log.warning("announce %s: not published (%s)", self.channel, type(exc).__name__)
            if not self._again:
                return

    async def flush(self) -> None:
        """Wait for the pending publish (tests, shutdown)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
