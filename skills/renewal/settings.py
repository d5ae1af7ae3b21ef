"""The renewal skill's settings (``renewal:`` in kefu.yml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    """``renewal:`` in kefu.yml."""

    offsets: tuple[int, ...] = (60, 30, 7)
    uplift: float = 0.03  # list-price increase quoted for the next term
    term_months: int = 12
    batch: int = 500
    concurrency: int = 32
    lock_ms: int = 10 * 60_000
    timezone: str = "Asia/Shanghai"
    run_at: str = "09:00"  # local time of the daily scan

    @classmethod
    def from_section(cls, s: Mapping[str, Any]) -> RenewalSettings:
        d = cls()
        offsets = tuple(sorted({int(x) for x in s.get("offsets", d.offsets)}, reverse=True))
        return cls(
            offsets=offsets, uplift=float(s.get("uplift", d.uplift)), term_months=int(s.get("term_months", d.term_months)),
            batch=int(s.get("batch", d.batch)), concurrency=int(s.get("concurrency", d.concurrency)),
            lock_ms=int(s.get("lock_ms", d.lock_ms)), timezone=str(s.get("timezone", d.timezone)),
            run_at=str(s.get("run_at", d.run_at)),
        )
