"""Notification activity for the console: what happened to notifications, per hour and
day, topic, channel and outcome, pre-aggregated so a dashboard over millions of records
reads a few dozen small documents.

:class:`NotificationActivity` owns ``notification_stats``: one document per hour and one
per day (a calendar day in the gateway's time zone), each holding the counts of that
period as ``{"<topic>|<channel>|<outcome>|<reason>": n}``. ``rollup`` recounts the hours a
record could still change in (statuses move from sending to sent or fallen back for a
while after a notification was recorded: the outbox's retries, a fallback) from the
engine's ``notifications``, read through a ``created_at`` index, and sums the days those
hours belong to from their hours; older hours are final. The page reads day documents
(hours for the last day); a drill-down reads single notifications through the index.

Outcomes: ``sent``, ``digest`` (folded into a digest), ``held`` (quiet hours; sent when
they end), ``suppressed`` (with the policy's reason), ``fell_back`` (a channel failed,
the next one took it) and ``failed`` (no channel could deliver).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from preferences.model import zone

Document = dict[str, Any]
HOUR = 3600.0
OUTCOMES = ("sent", "digest", "held", "suppressed", "fell_back", "failed")
_FIELDS = {"topic": 1, "channel": 1, "channels": 1, "action": 1, "status": 1, "reason": 1, "failed": 1, "created_at": 1}


def outcome_query(outcome: str) -> Document:
    """A MongoDB filter that holds for every record of ``outcome`` (a superset for sent:
    :func:`outcome_of` decides), served by the (action, created_at) index."""
    filters: dict[str, Document] = {
        "sent": {"action": "send"},
        "digest": {"action": "digest"},
        "held": {"action": "hold"},
        "suppressed": {"action": "suppress"},
        "fell_back": {"action": "send", "failed.0": {"$exists": True}},
        "failed": {"status": "undeliverable"},
    }
    return filters.get(outcome, {})


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


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    since: float
    until: float
    topic: str = ""
    channel: str = ""


def _key(topic: str, channel: str, outcome: str, reason: str) -> str:
    # "." and "$" cannot start or sit in a stored field name; the parts never hold "|".
    return "|".join(p.replace(".", "_").replace("$", "_").replace("|", "/") for p in (topic, channel, outcome, reason))


class NotificationActivity:
    """Counts of notification outcomes per hour and day, and single notifications."""

    def __init__(self, db: AsyncDatabase[Document], *, time_zone: str = "Asia/Shanghai", settle_s: float = 2 * HOUR) -> None:
        self.notifications = db["notifications"]  # read only: the notification engine writes it
        self.stats = db["notification_stats"]
        self.zone = zone(time_zone)
        self.settle_s = settle_s

    async def ensure_indexes(self) -> None:
        await self.stats.create_indexes([IndexModel([("kind", ASCENDING), ("at", ASCENDING)])])
        await self.notifications.create_indexes(
            [IndexModel([("created_at", DESCENDING)]), IndexModel([("topic", ASCENDING), ("created_at", DESCENDING)]),
             IndexModel([("action", ASCENDING), ("created_at", DESCENDING)])]
        )

    def day_start(self, ts: float) -> float:
        local = dt.datetime.fromtimestamp(ts, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    async def rollup(self, now: float | None = None) -> int:
        """Recount every hour from the last final one to now and the days they belong
        to; returns the records read. The first run counts the whole collection."""
        now = time.time() if now is None else now
        mark = await self.stats.find_one({"_id": "final"})
        start = float(mark["at"]) if mark is not None else 0.0
        hours: dict[float, Counter[str]] = {}
        read = 0
        async for doc in self.notifications.find({"created_at": {"$gte": start}}, projection=_FIELDS).batch_size(5000):
            read += 1
            outcome, channel, reason = outcome_of(doc)
            hour = float(doc["created_at"]) // HOUR * HOUR
            hours.setdefault(hour, Counter())[_key(str(doc.get("topic", "")), channel, outcome, reason)] += 1
        # The recount replaces its hours whole: counts whose outcome moved on disappear.
        await self.stats.delete_many({"kind": "hour", "at": {"$gte": start}})
        await self._write("hour", hours)
        days = sorted({self.day_start(h) for h in hours} | ({self.day_start(start)} if mark is not None else set()))
        totals: dict[float, Counter[str]] = {}
        for day in days:
            total: Counter[str] = Counter()
            end = self.day_start(day + 30 * HOUR)
            async for h in self.stats.find({"kind": "hour", "at": {"$gte": day, "$lt": end}}, projection={"counts": 1}):
                total.update(h["counts"])
            totals[day] = total
        await self._write("day", totals)
        final = (now - self.settle_s) // HOUR * HOUR
        if final > start:
            await self.stats.replace_one({"_id": "final"}, {"kind": "mark", "at": final}, upsert=True)
        await self.stats.replace_one({"_id": "last"}, {"kind": "mark", "at": now}, upsert=True)
        return read

    async def _write(self, kind: str, periods: Mapping[float, Counter[str]]) -> None:
        ops = [ReplaceOne({"_id": f"{kind}:{int(at)}"}, {"kind": kind, "at": at, "counts": dict(c)}, upsert=True) for at, c in periods.items()]
        for i in range(0, len(ops), 500):
            await self.stats.bulk_write(ops[i : i + 500], ordered=False)

    async def last_rollup(self) -> float | None:
        mark = await self.stats.find_one({"_id": "last"})
        return None if mark is None else float(mark["at"])

    async def summary(self, f: ActivityFilter, *, hourly: bool = False) -> Document:
        """Totals per outcome, per period (hours, or days in the gateway's time zone), per
        topic and channel, and the reasons for suppressions and failures."""
        kind = "hour" if hourly else "day"
        since = f.since // HOUR * HOUR if hourly else self.day_start(f.since)
        totals: Counter[str] = Counter()
        series: dict[float, Counter[str]] = {}
        by_topic: dict[str, Counter[str]] = {}
        by_channel: dict[str, Counter[str]] = {}
        reasons: Counter[str] = Counter()
        async for row in self.stats.find({"kind": kind, "at": {"$gte": since, "$lt": f.until}}, projection={"at": 1, "counts": 1}):
            at = float(row["at"])
            for key, n in row["counts"].items():
                topic, channel, o, reason = key.split("|")
                if (f.topic and topic != f.topic) or (f.channel and channel != f.channel):
                    continue
                totals[o] += n
                series.setdefault(at, Counter())[o] += n
                by_topic.setdefault(topic, Counter())[o] += n
                by_channel.setdefault(channel, Counter())[o] += n
                if o in ("suppressed", "failed") and reason:
                    reasons[f"{o}: {reason}"] += n
        return {
            "since": since,
            "totals": {o: totals.get(o, 0) for o in OUTCOMES},
            "series": [{"at": b, **{o: c.get(o, 0) for o in OUTCOMES}} for b, c in sorted(series.items())],
            "topics": {t: {o: c.get(o, 0) for o in OUTCOMES} for t, c in sorted(by_topic.items())},
            "channels": {ch: {o: c.get(o, 0) for o in OUTCOMES} for ch, c in sorted(by_channel.items())},
            "reasons": reasons.most_common(20),
        }

    async def recent(self, template: str, limit: int = 10) -> list[Document]:
        """The latest notifications rendered with ``template`` (ids and times), to preview
        an edited template with real data."""
        cursor = self.notifications.find({"template": template}, projection={"_id": 1, "created_at": 1}).sort("created_at", DESCENDING)
        return [d async for d in cursor.limit(limit)]

    async def data_of(self, notification_id: str) -> Document | None:
        doc = await self.notifications.find_one({"_id": notification_id}, projection={"data": 1})
        return None if doc is None else dict(doc.get("data") or {})

    async def notifications_of(self, f: ActivityFilter, outcome: str = "", limit: int = 100) -> list[Document]:
        """Single notifications for a drill-down, newest first."""
        query: Document = {"created_at": {"$gte": f.since, "$lt": f.until}, **outcome_query(outcome)}
        if f.topic:
            query["topic"] = f.topic
        out: list[Document] = []
        fields = {**_FIELDS, "customer": 1, "importance": 1, "template": 1, "deliver_at": 1, "digest_id": 1}
        async for doc in self.notifications.find(query, projection=fields).sort("created_at", DESCENDING).limit(limit * 2):
            o, channel, reason = outcome_of(doc)
            if (outcome and o != outcome) or (f.channel and channel != f.channel):
                continue
            out.append({**doc, "outcome": o, "channel": channel, "why": reason})
            if len(out) >= limit:
                break
        return out
