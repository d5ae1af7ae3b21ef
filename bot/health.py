"""Whether the stores are reachable, known without asking them on the ack path.

The webhook must answer 503 while MongoDB is down (so WeChat retries later rather than
us acknowledging what we might lose), but a ping per request would halve throughput. A
background task pings once a second and the webhook reads the flag.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(
        self, mongo: AsyncMongoClient[Any], *, interval_s: float = 1.0, timeout_s: float = 2.0, trip_after: int = 2
    ) -> None:
        self._mongo = mongo
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        # One slow ping on a loaded machine is not an outage: Redis holds what we accept,
        # so turning traffic away needs consecutive failures.
        self.trip_after = trip_after
        self.failures = 0
        self.mongo_ok = True

    async def check_once(self) -> bool:
        try:
            await asyncio.wait_for(self._mongo.admin.command("ping"), self.timeout_s)
            self.failures = 0
        except Exception as exc:  # any failure counts towards "do not accept traffic"
            self.failures += 1
            if self.mongo_ok and self.failures >= self.trip_after:
                log.error("MongoDB unreachable (%s): webhooks answer 503 until it is back", type(exc).__name__)
        ok = self.failures < self.trip_after
        if ok and not self.mongo_ok:
            log.warning("MongoDB reachable again")
        self.mongo_ok = ok
        return ok

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check_once()
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
