"""Live notification-activity counts: what changed since the last rollup, in Redis.

:class:`~preferences.activity.NotificationActivity` recounts ``notifications`` into
``notification_stats`` once a minute; between two recounts the engine adds what it did
here, in the paths that already write a batch (one round trip per batch, not per
notification): +1 on a new record's hour and outcome, and -1/+1 when a record's outcome
moves (a fallback, a failure). Every add publishes on :data:`CHANGED`, which the
console's live hub relays to open dashboards.

The counts of one period between two rollups live in one hash per *epoch*
(``kefu:activity:delta:<epoch>``, fields ``<hour>|<topic>|<channel>|<outcome>|<reason>``).
A rollup first moves the epoch on, so what the engine adds from then on lands in the new
hash; it then recounts from MongoDB, records in its mark which epoch its figures reach up
to, and deletes the older hashes. A reader adds the hashes from the mark's epoch on to
the stored figures, so a notification is counted once whichever side of a rollup it
falls. The script reads the epoch and adds in one step. Records are written before their
counts are added: a rollup that moves the epoch in the milliseconds between the two
counts that record twice until the next rollup recounts its hour (never misses it).
A rollup also recounts the older hours the dropped hashes name (a fallback on a record
from yesterday), which a recount of the last hours alone would miss. A recount spread
over several calls (see :meth:`~preferences.activity.NotificationActivity.rollup`)
records the epoch of the call that finishes it, after reading again the hours that
changed since an earlier call read them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

HOUR = 3600.0
EPOCH = "kefu:activity:epoch"
DELTA = "kefu:activity:delta:"
ROLLUP_LOCK = "kefu:activity:rollup"
#: The pub/sub channel an add is announced on (the epoch is the payload).
CHANGED = "kefu:activity:changed"
#: Without rollups (no worker running) the hash still goes away eventually.
DELTA_TTL_S = 7 * 86_400

_ADD = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local key = ARGV[1] .. epoch
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', key, ARGV[3])
redis.call('PUBLISH', ARGV[2], epoch)
return epoch
"""


def outcome_of(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(outcome, channel, reason) of one notification record."""
    channels = doc.get("channels") or []
    channel = str(doc.get("channel") or (channels[0] if channels else "") or "none")
    failed = doc.get("failed") or []
    if doc.get("status") == "undeliverable":
        return "failed", str(failed[0]) if failed else channel, str(doc.get("reason", ""))
    if failed:
        return "fell_back", str(failed[0]), ""
    action = str(doc.get("action", ""))
    if action == "suppress":
        return "suppressed", channel, str(doc.get("reason", ""))
    return {"send": "sent", "hold": "held", "digest": "digest"}.get(action, action or "unknown"), channel, ""


def stats_key(topic: str, channel: str, outcome: str, reason: str) -> str:
    # "." and "$" cannot start or sit in a stored field name; the parts never hold "|".
    return "|".join(p.replace(".", "_").replace("$", "_").replace("|", "/") for p in (topic, channel, outcome, reason))


def key_of(doc: Mapping[str, Any]) -> str:
    outcome, channel, reason = outcome_of(doc)
    return stats_key(str(doc.get("topic", "")), channel, outcome, reason)


def hour_of(doc: Mapping[str, Any]) -> float:
    return float(doc.get("created_at") or 0.0) // HOUR * HOUR


class Changes:
    """The count changes of one batch, added with one :meth:`ActivityCounts.add`."""

    __slots__ = ("deltas",)

    def __init__(self) -> None:
        self.deltas: Counter[str] = Counter()

    def recorded(self, doc: Mapping[str, Any]) -> None:
        self.deltas[f"{int(hour_of(doc))}|{key_of(doc)}"] += 1

    def moved(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """A record changed from ``before`` to ``after``: its count moves if its outcome,
        channel or reason did."""
        old, new = key_of(before), key_of(after)
        if old != new:
            hour = int(hour_of(before))
            self.deltas[f"{hour}|{old}"] -= 1
            self.deltas[f"{hour}|{new}"] += 1


class ActivityCounts:
    """The engine's side (:meth:`add`) and the rollup's and readers' side of the hashes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._add = redis.register_script(_ADD)

    async def add(self, changes: Changes) -> None:
        """Add a batch's changes; a Redis outage loses them for at most a rollup
        interval (the rollup recounts from the records), so it only logs."""
        deltas = [x for field, n in changes.deltas.items() if n for x in (field, n)]
        if not deltas:
            return
        try:
            await self._add(keys=[EPOCH], args=[DELTA, CHANGED, DELTA_TTL_S, *deltas])
        except (RedisError, OSError) as exc:
            log.warning("activity counts: live counts not added (%s); the next rollup recounts them", type(exc).__name__)

    async def begin_rollup(self, lock_s: float) -> int | None:
        """Start a rollup: the new epoch (adds go there from now on), or None when another
        process's rollup is running."""
        if not await self.redis.set(ROLLUP_LOCK, "1", nx=True, ex=max(1, int(lock_s))):
            return None
        return int(await self.redis.incr(EPOCH))

    async def drop(self, since: int, epoch: int) -> None:
        """The rollup that began ``epoch`` has stored its figures: the hashes of the
        epochs from ``since`` up to it are counted there."""
        if epoch > since:
            await self.redis.delete(*[f"{DELTA}{e}" for e in range(since, epoch)])

    async def release_rollup(self) -> None:
        await self.redis.delete(ROLLUP_LOCK)

    async def pending(self, since: int, until: int | None = None) -> Counter[str]:
        """The changes of the epochs from ``since`` (to ``until``, exclusive; else to the
        current one), summed: ``{"<hour>|<key>": n}``."""
        if until is None:
            raw = await self.redis.get(EPOCH)
            until = int(raw) + 1 if raw is not None else 1
        total: Counter[str] = Counter()
        if until <= since:
            return total
        async with self.redis.pipeline(transaction=False) as pipe:
            for e in range(since, until):
                pipe.hgetall(f"{DELTA}{e}")
            hashes = await pipe.execute()
        for h in hashes:
            for field, n in h.items():
                total[field.decode() if isinstance(field, bytes) else str(field)] += int(n)
        return total
