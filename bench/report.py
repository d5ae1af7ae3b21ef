"""What the benchmarks print: two-column result tables, this process's peak memory, the
machine's load and the MongoDB commands this process sent."""

from __future__ import annotations

import os
import resource
from collections import Counter
from collections.abc import Sequence

from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    """MongoDB commands this process sent, in all and by collection: round trips are what
    the embedded server (single-threaded) charges for, and what carries over to a real
    mongod. Pass it to a client's ``event_listeners``, or ``monitoring.register`` it
    before any client is made."""

    def __init__(self) -> None:
        self.count = 0
        self.by_collection: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        target = event.command.get(event.command_name)
        self.by_collection[target if isinstance(target, str) else ""] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def load_average() -> str:
    """The 1/5/15-minute load averages: benchmarks on a shared machine print them with
    every figure."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_rows(rows: Sequence[tuple[str, str]]) -> None:
    """A ``measure  result`` table, the measure column as wide as its longest entry."""
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{width}}  result")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
