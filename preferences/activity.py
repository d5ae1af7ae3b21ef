"""Notification activity for the console: what happened to notifications, per hour and
day, topic, channel and outcome, pre-aggregated so a dashboard over millions of records
reads a few dozen small documents.

:class:`NotificationActivity` owns ``notification_stats``: one document per hour and one
per day (a calendar day in the gateway's time zone), each holding the counts of that
period as ``{"<topic>|<channel>|<outcome>|<reason>": n}``. ``rollup`` recounts the hours a
record could still change in (statuses move from sending to sent or fallen back for a
while after a notification was recorded: the outbox's retries, a fallback) from the
engine's ``notifications``, read through a ``created_at`` index a bounded window of time
per query (resumable: the progress is stored, see :meth:`NotificationActivity.rollup`),
and sums the days those hours belong to from their hours; older hours are final,
unless the engine reports a change in one (a fallback on yesterday's record), which the
next rollup recounts. The page reads day documents (hours for the last day) plus the
changes the engine counted in Redis since the last rollup
(:mod:`preferences.activity_counts`), so it is current to the engine's last batch; a
drill-down reads single notifications. The records belong to the engine: they are read
through its methods, which its indexes serve.

Outcomes: ``sent``, ``digest`` (folded into a digest), ``held`` (quiet hours; sent when
they end), ``suppressed`` (with the policy's reason), ``fell_back`` (a channel failed,
the next one took it) and ``failed`` (no channel could deliver).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from preferences.activity_counts import HOUR, outcome_of, stats_key
from preferences.engine import NotificationEngine
from preferences.model import zone

Document = dict[str, Any]
OUTCOMES = ("sent", "digest", "held", "suppressed", "fell_back", "failed")
#: The recount's progress (a mark) and the hours it counted so far (see ``rollup``).
RECOUNT = "recount"
STAGED = "staged"
#: A first count's walk back looks for older records after this many empty windows.
EMPTY_WINDOWS = 4
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


@dataclass(frozen=True, slots=True)
class _Here:
    """What a rollup call reads itself: these older hours, the range from ``since`` on, and
    (a first count's walk back) the range before ``below``."""

    older: set[float]
    since: float
    below: float


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    since: float
    until: float
    topic: str = ""
    channel: str = ""


class NotificationActivity:
    """Counts of notification outcomes per hour and day, and single notifications."""

    def __init__(
                self, db: AsyncDatabase[Document], engine: NotificationEngine, *, time_zone: str = "Asia/Shanghai", settle_s: float = 2 * HOUR,
        window_s: float = 6 * HOUR,
    ) -> None:
        self.engine = engine  # owns the records; read only here
        self.counts = engine.counts
        self.stats = db["notification_stats"]
        self.zone = zone(time_zone)
        self.settle_s = settle_s
        self.window_s = max(HOUR, window_s // HOUR * HOUR)  # records read per query: this much time

    async def ensure_indexes(self) -> None:
        await self.stats.create_indexes([IndexModel([("kind", ASCENDING), ("at", ASCENDING)])])

    def day_start(self, ts: float) -> float:
        local = dt.datetime.fromtimestamp(ts, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    async def rollup(self, now: float | None = None, *, lock_s: float = 3600.0, budget_s: float | None = None) -> int:
        """Recount every hour from the last final one to now, the older hours the engine
        reported changes in, and the days they belong to; returns the records read (-1
        when another process's rollup is running).

        The recount reads :attr:`window_s` of records per query (the embedded server
        answers one query at a time: a read of a whole quarter held every other client
        for seconds) into a staging area, noting after each window how far it got, and
        replaces the stored hours and days only once every window is read. With
        ``budget_s`` it stops after the window that used it up and the next call goes on
        from there (so does a rollup that was interrupted): the first run over a million
        records spreads over several job rounds instead of holding the lock for a
        quarter of an hour; the live counts keep the figures current meanwhile."""
        epoch = await self.counts.begin_rollup(lock_s)
        if epoch is None:
            return -1
        try:
            return await self._rollup(time.time() if now is None else now, epoch, budget_s)
        finally:
            await self.counts.release_rollup()

    async def _rollup(self, now: float, epoch: int, budget_s: float | None) -> int:
        state = await self.stats.find_one({"_id": RECOUNT})
        if state is None:
            state = await self._plan(now, epoch)
        deadline = None if budget_s is None else time.monotonic() + budget_s

        def spent() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        # What this call reads itself (after its epoch began) needs no second look at the end.
        older: list[float] = [float(h) for h in state["older"]]
        here = _Here(set(older[int(state["older_done"]):]), math.inf if state["next"] is None else float(state["next"]),
                     -math.inf if state["back"] is None else float(state["back"]))
        read = 0
        # A first count walks back from its start to the oldest record, a window a query.
        while state["back"] is not None:
            until = float(state["back"])
            n = await self._stage(until - self.window_s, until, epoch)
            read += n
            empty = 0 if n else int(state["empty"]) + 1
            back: float | None = until - self.window_s
            if empty >= EMPTY_WINDOWS:
                # A day with nothing: anything older? (Nothing is, as a rule: a cheap
                # look-up then; else the walk goes on from the newest older record.)
                older_at = await self.engine.newest_record_before(until - self.window_s)
                back, empty = (None, 0) if older_at is None else ((older_at // HOUR + 1) * HOUR, 0)
            state["back"], state["empty"] = back, empty
            await self.stats.update_one({"_id": RECOUNT}, {"$set": {"back": back, "empty": empty}})
            if spent():
                return read
        # The older hours one query each, then the range from the last final hour in
        # windows; the last window runs to now (records made meanwhile included).
        while state["older_done"] < len(older):
            h = older[state["older_done"]]
            read += await self._stage(h, h + HOUR, epoch)
            state["older_done"] += 1
            await self.stats.update_one({"_id": RECOUNT}, {"$set": {"older_done": state["older_done"]}})
            if spent():
                return read
        while state["next"] is not None:
            since = float(state["next"])
            next_: float | None = since + self.window_s
            if next_ is not None and next_ >= now:
                next_ = None
            read += await self._stage(since, next_, epoch)
            state["next"] = next_
            await self.stats.update_one({"_id": RECOUNT}, {"$set": {"next": next_}})
            if next_ is not None and spent():
                return read
        read += await self._replace(state, now, epoch, here)
        return read

    async def recounting(self) -> bool:
        """A recount is under way (a rollup ran out of its budget or was stopped)."""
        return await self.stats.find_one({"_id": RECOUNT}, projection={"_id": 1}) is not None

    async def _plan(self, now: float, epoch: int) -> Document:
        """A new recount: what it covers, noted before the first window is read."""
        mark = await self.stats.find_one({"_id": "final"})
        last = await self.stats.find_one({"_id": "last"})
        since_epoch = int(last.get("epoch", 0)) if last is not None else 0
        # Older hours with changes the engine counted since the last rollup.
        touched = {float(f.split("|", 1)[0]) for f in await self.counts.pending(since_epoch, epoch)}
        # A first count reads from the last hours to now, then walks back to the oldest
        # record (finding the oldest first would sort the whole collection on the
        # embedded server: seconds at 200,000 records).
        start = float(mark["at"]) if mark is not None else (now - self.settle_s) // HOUR * HOUR
        state: Document = {
            "kind": "mark", "epoch": epoch, "since_epoch": since_epoch, "start": start, "first": mark is None,
            "back": None if mark is not None else start, "empty": 0,
            "older": sorted(h for h in touched if h < start) if mark is not None else [], "older_done": 0, "next": start,
        }
        await self.stats.delete_many({"kind": STAGED})  # what an abandoned recount left
        await self.stats.replace_one({"_id": RECOUNT}, state, upsert=True)
        return state

    async def _stage(self, since: float, until: float | None, epoch: int, *, whole: bool = False) -> int:
        """Count the records of ``[since, until)`` (to now when None) into staged hours;
        ``whole``: the hour is staged even when it has no records left."""
        hours: dict[float, Counter[str]] = {since: Counter()} if whole else {}
        read = 0
        async for doc in self.engine.records_between(since, until, _FIELDS).batch_size(5000):
            read += 1
            outcome, channel, reason = outcome_of(doc)
            hour = float(doc["created_at"]) // HOUR * HOUR
            hours.setdefault(hour, Counter())[stats_key(str(doc.get("topic", "")), channel, outcome, reason)] += 1
        # A window read again (an interrupted rollup) replaces what it staged before.
        await self._write(STAGED, hours)
        return read

    async def _replace(self, state: Document, now: float, epoch: int, here: _Here) -> int:
        """Every window is read: the staged hours replace the stored ones, the days they
        belong to are summed again and the marks move on. Repeated whole when interrupted.

        The figures then hold every change of the epochs before ``epoch`` (this call's).
        An hour staged by an earlier call misses what changed in it since: the hours the
        engine counted changes in since the recount began are read again here, unless
        this call read them itself."""
        start = float(state["start"])
        older = [float(h) for h in state["older"]]
        read = 0
        again = sorted(h for h in {float(f.split("|", 1)[0]) for f in await self.counts.pending(int(state["epoch"]), epoch)}
                       if h not in here.older and here.below <= h < here.since)
        for h in again:
            read += await self._stage(h, h + HOUR, epoch, whole=True)
        older = sorted(set(older) | {h for h in again if h < start})
        staged: dict[float, Counter[str]] = {}
        async for doc in self.stats.find({"kind": STAGED}, projection={"at": 1, "counts": 1}):
            staged[float(doc["at"])] = Counter(doc["counts"])
        # The recount replaces its hours whole: counts whose outcome moved on disappear.
        # A first count replaces everything (records may have been erased since).
        await self.stats.delete_many({"kind": "hour", "at": {"$gte": 0.0 if state["first"] else start}})
        if state["first"]:
            await self.stats.delete_many({"kind": "day"})
        if older:
            await self.stats.delete_many({"_id": {"$in": [f"hour:{int(h)}" for h in older]}})
        await self._write("hour", staged)
        days = sorted({self.day_start(h) for h in staged} | {self.day_start(h) for h in older}
                      | ({self.day_start(start)} if not state["first"] else set()))
        totals: dict[float, Counter[str]] = {}
        for day in days:
            total: Counter[str] = Counter()
            end = self.day_start(day + 30 * HOUR)
            async for row in self.stats.find({"kind": "hour", "at": {"$gte": day, "$lt": end}}, projection={"counts": 1}):
                total.update(row["counts"])
            totals[day] = total
        await self._write("day", totals)
        final = (now - self.settle_s) // HOUR * HOUR
        if final > start or state["first"]:
            await self.stats.replace_one({"_id": "final"}, {"kind": "mark", "at": max(final, start)}, upsert=True)
        await self.stats.replace_one({"_id": "last"}, {"kind": "mark", "at": now, "epoch": epoch}, upsert=True)
        await self.counts.drop(int(state["since_epoch"]), epoch)
        await self.stats.delete_many({"kind": STAGED})
        await self.stats.delete_one({"_id": RECOUNT})
        return read

    async def _write(self, kind: str, periods: Mapping[float, Counter[str]]) -> None:
        ops = [ReplaceOne({"_id": f"{kind}:{int(at)}"}, {"kind": kind, "at": at, "counts": dict(c)}, upsert=True) for at, c in periods.items()]
        for i in range(0, len(ops), 500):
            await self.stats.bulk_write(ops[i : i + 500], ordered=False)

    async def last_rollup(self) -> float | None:
        mark = await self.stats.find_one({"_id": "last"})
        return None if mark is None else float(mark["at"])

    async def periods(self, kind: str, since: float, until: float) -> list[tuple[float, Mapping[str, int]]]:
        """The stored counts of each hour or day in ``[since, until)`` and, as periods of
        their own, the changes counted live since the last rollup."""
        # Two reads: the embedded server scans the whole collection for an $or of both.
        last = await self.stats.find_one({"_id": "last"}, projection={"epoch": 1})
        epoch = int(last.get("epoch", 0)) if last is not None else 0
        query = {"kind": kind, "at": {"$gte": since, "$lt": until}}
        rows: list[tuple[float, Mapping[str, int]]] = [
            (float(row["at"]), row["counts"]) async for row in self.stats.find(query, projection={"at": 1, "counts": 1})
        ]
        live: dict[float, Counter[str]] = {}
        for field, n in (await self.counts.pending(epoch)).items():
            hour_s, key = field.split("|", 1)
            at = float(hour_s) if kind == "hour" else self.day_start(float(hour_s))
            if n and since <= at < until:
                live.setdefault(at, Counter())[key] += n
        return rows + list(live.items())

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
        for at, counts in await self.periods(kind, since, f.until):
            for key, n in counts.items():
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
        return [d async for d in self.engine.newest_records({"template": template}, {"_id": 1, "created_at": 1}, limit)]

    async def data_of(self, notification_id: str) -> Document | None:
        return await self.engine.data_of(notification_id)

    async def notifications_of(self, f: ActivityFilter, outcome: str = "", limit: int = 100) -> list[Document]:
        """Single notifications for a drill-down, newest first."""
        query: Document = {"created_at": {"$gte": f.since, "$lt": f.until}, **outcome_query(outcome)}
        if f.topic:
            query["topic"] = f.topic
        out: list[Document] = []
        fields = {**_FIELDS, "customer": 1, "importance": 1, "template": 1, "deliver_at": 1, "digest_id": 1}
        async for doc in self.engine.newest_records(query, fields, limit * 2):
            o, channel, reason = outcome_of(doc)
            if (outcome and o != outcome) or (f.channel and channel != f.channel):
                continue
            out.append({**doc, "outcome": o, "channel": channel, "why": reason})
            if len(out) >= limit:
                break
        return out
