"""Changes to the trainer's work, announced on Redis for the open trainer pages.

A missed turn kept, a label made, approved or reverted, a corrected transcript kept or
reviewed: each publishes ``{what, id, at}`` on :data:`CHANNEL` (``id``: the label's or
the voice note's key; never customer text). The console's live hub relays the channel
to the trainer pages of every web process (:mod:`admin.live_trainer`), which read the
current state themselves. An announcement that cannot be sent is logged and dropped:
the change itself is stored, and an open page catches up when it reloads.
"""

from __future__ import annotations

import json
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "kefu:trainer:changed"
MISSED, LABEL, TRANSCRIPT = "missed", "label", "transcript"


class TrainerNews:
    def __init__(self, redis: Redis, channel: str = CHANNEL) -> None:
        self.redis = redis
        self.channel = channel

    async def announce(self, what: str, ref: str = "") -> None:
        try:
            await self.redis.publish(self.channel, json.dumps({"what": what, "id": ref, "at": time.time()}))
        except (RedisError, OSError) as exc:
            log.warning("trainer news: %s change not announced (%s); open pages see it on reload", what, type(exc).__name__)
