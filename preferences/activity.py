"""Notification activity for the console: what happened to notifications, per hour, topic,
channel and outcome, pre-aggregated so a dashboard over millions of records reads a few
hundred rows.

:class:`NotificationActivity` owns ``notification_stats``: one row per (hour, topic,
channel, outcome, reason) with a count. ``rollup`` recounts the hours a record could
still change in (statuses move from sending to sent or fallen back for a while after a
notification was recorded: the outbox's retries, a fallback) from the engine's
``notifications``, read through a
``created_at`` index; older hours are final. Drill-down reads single notifications of one
hour through the same index.

Outcomes: ``sent``, ``digest`` (folded into a digest), ``held`` (quiet hours; sent when
they end), ``suppressed`` (with the policy's reason), ``fell_back`` (a channel failed,
the next one took it) and ``failed`` (no channel could deliver).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
HOUR = 3600.0
OUTCOMES = ("sent", "digest", "held", "suppressed", "fell_back", "failed")
_FIELDS = {"topic": 1, "channel": 1, "channels": 1, "action": 1, "status": 1, "reason": 1, "failed": 1, "created_at": 1}


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


class NotificationActivity:
    """Hourly counts of notification outcomes, and single notifications for a drill-down."""

    def __init__(self, db: AsyncDatabase[Document], *, settle_s: float = 2 * HOUR) -> None:
        self.notifications = db["notifications"]  # read only: the notification engine writes it
        self.stats = db["notification_stats"]
        self.marks = db["notification_stats_marks"]
        self.settle_s = settle_s

    async def ensure_indexes(self) -> None:
        await self.stats.create_indexes([IndexModel([("hour", ASCENDING)])])
        await self.notifications.create_indexes(
            [IndexModel([("created_at", DESCENDING)]), IndexModel([("topic", ASCENDING), ("created_at", DESCENDING)])]
        )

    async def rollup(self, now: float | None = None) -> int:
        """Recount every hour from the last final one to now; returns the records read.

        The first run counts the whole collection; later runs only the hours a status
        can still change in."""
        now = time.time() if now is None else now
        mark = await self.marks.find_one({"_id": "final"})
        start = float(mark["hour"]) if mark is not None else 0.0
        counts: Counter[tuple[float, str, str, str, str]] = Counter()
        read = 0
        async for doc in self.notifications.find({"created_at": {"$gte": start}}, projection=_FIELDS).batch_size(5000):
            read += 1
            outcome, channel, reason = outcome_of(doc)
            hour = float(doc["created_at"]) // HOUR * HOUR
            counts[(hour, str(doc.get("topic", "")), channel, outcome, reason)] += 1
        rows = [
            InsertOne({"_id": f"{int(h)}|{t}|{c}|{o}|{r}", "hour": h, "topic": t, "channel": c, "outcome": o, "reason": r, "n": n})
            for (h, t, c, o, r), n in counts.items()
        ]
        # The recount replaces its hours whole: a row whose outcome moved on disappears.
        await self.stats.delete_many({"hour": {"$gte": start}})
        for i in range(0, len(rows), 1000):
            await self.stats.bulk_write(rows[i : i + 1000], ordered=False)
        final = (now - self.settle_s) // HOUR * HOUR
        if final > start:
            await self.marks.update_one({"_id": "final"}, {"$set": {"hour": final, "at": now}}, upsert=True)
        await self.marks.update_one({"_id": "last"}, {"$set": {"at": now}}, upsert=True)
        return read

    async def last_rollup(self) -> float | None:
        mark = await self.marks.find_one({"_id": "last"})
        return None if mark is None else float(mark["at"])

    async def summary(self, f: ActivityFilter, bucket_s: float = 86_400.0, tz_offset_s: float = 0.0) -> Document:
        """Totals per outcome, per bucket (a day by default, in local time), per topic and
        channel, and suppression reasons."""
        query: Document = {"hour": {"$gte": f.since // HOUR * HOUR, "$lt": f.until}}
        if f.topic:
            query["topic"] = f.topic
        if f.channel:
            query["channel"] = f.channel
        totals: Counter[str] = Counter()
        series: dict[float, Counter[str]] = {}
        by_topic: dict[str, Counter[str]] = {}
        by_channel: dict[str, Counter[str]] = {}
        reasons: Counter[str] = Counter()
        async for row in self.stats.find(query, projection={"_id": 0}):
            n, o = int(row["n"]), str(row["outcome"])
            totals[o] += n
            b = (float(row["hour"]) + tz_offset_s) // bucket_s * bucket_s - tz_offset_s
            series.setdefault(b, Counter())[o] += n
            by_topic.setdefault(str(row["topic"]), Counter())[o] += n
            by_channel.setdefault(str(row["channel"]), Counter())[o] += n
            if o in ("suppressed", "failed") and row.get("reason"):
                reasons[f"{o}: {row['reason']}"] += n
        return {
            "totals": {o: totals.get(o, 0) for o in OUTCOMES},
            "series": [{"at": b, **{o: c.get(o, 0) for o in OUTCOMES}} for b, c in sorted(series.items())],
            "topics": {t: {o: c.get(o, 0) for o in OUTCOMES} for t, c in sorted(by_topic.items())},
            "channels": {ch: {o: c.get(o, 0) for o in OUTCOMES} for ch, c in sorted(by_channel.items())},
            "reasons": reasons.most_common(20),
        }

    async def notifications_of(self, f: ActivityFilter, outcome: str = "", limit: int = 100) -> list[Document]:
        """Single notifications for a drill-down, newest first."""
        query: Document = {"created_at": {"$gte": f.since, "$lt": f.until}}
        if f.topic:
            query["topic"] = f.topic
        out: list[Document] = []
        fields = {**_FIELDS, "customer": 1, "importance": 1, "template": 1, "deliver_at": 1, "digest_id": 1}
        async for doc in self.notifications.find(query, projection=fields).sort("created_at", DESCENDING).limit(limit * 20):
            o, channel, reason = outcome_of(doc)
            if (outcome and o != outcome) or (f.channel and channel != f.channel):
                continue
            out.append({**doc, "outcome": o, "channel": channel, "why": reason})
            if len(out) >= limit:
                break
        return out
