"""Engineer matching: pure, so it is tested and benchmarked without any store.

Candidates completed jobs of the fault's category with an NPS above the threshold (the
query does that part). They are ranked by how soon they can be there: travel time from
their position to the customer's plus a fixed cost per job already on their list (their
load), so a free engineer 20 minutes further away beats a busy one next door.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MatchSettings:
    min_nps: float = 92.0
    speed_kmh: float = 30.0  # city traffic
    minutes_per_job: float = 45.0  # what each job already on the list delays the next
    default_travel_min: float = 60.0  # customer or engineer position unknown
    alternates: int = 2


@dataclass(frozen=True, slots=True)
class Match:
    engineer: Mapping[str, Any]
    distance_km: float | None
    eta_min: int
    score: float


def haversine_km(a: Sequence[float], b: Sequence[float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def rank(
    candidates: Sequence[Mapping[str, Any]], category: str, customer_location: Sequence[float] | None, settings: MatchSettings
) -> list[Match]:
    """Qualified candidates, best first (ties: higher NPS, more jobs of the category)."""
    out: list[Match] = []
    for eng in candidates:
        if float(eng.get("nps", 0)) <= settings.min_nps or int((eng.get("completed") or {}).get(category, 0)) <= 0:
            continue
        loc = eng.get("location")
        if customer_location and loc:
            km = haversine_km(customer_location, loc)
            travel = km / settings.speed_kmh * 60.0
        else:
            km, travel = None, settings.default_travel_min
        eta = travel + int(eng.get("load", 0)) * settings.minutes_per_job
        out.append(Match(eng, None if km is None else round(km, 1), max(5, round(eta)), eta))
    out.sort(key=lambda m: (m.score, -float(m.engineer.get("nps", 0)), -int((m.engineer.get("completed") or {}).get(category, 0))))
    return out
