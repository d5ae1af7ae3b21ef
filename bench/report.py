"""What the benchmarks print: two-column result tables and this process's peak memory."""

from __future__ import annotations

import resource
from collections.abc import Sequence


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
