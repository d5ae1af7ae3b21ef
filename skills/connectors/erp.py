"""Spare-part stock from the ERP: ``GET /api/v1/stock?parts=A,B&region=R``.

Answer: ``{"stock": {"<part_no>": {"qty": 3, "warehouse": "NJ-01"}, ...}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skills.connectors.base import Connector, ConnectorUnavailable


@dataclass(frozen=True, slots=True)
class Stock:
    part_no: str
    qty: int
    warehouse: str = ""


class ErpConnector(Connector):
    name = "erp"

    async def stock(self, parts: Sequence[str], region: str = "") -> dict[str, Stock]:
        """Stock of ``parts`` (one call for all of them); unknown parts count as 0."""
        if not parts:
            return {}
        params = {"parts": ",".join(parts)}
        if region:
            params["region"] = region
        data = await self.request("GET", "/api/v1/stock", params=params)
        raw = data.get("stock") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise ConnectorUnavailable(self.name, "bad_answer", f"no stock in {data!r:.200}")
        out: dict[str, Stock] = {}
        for part in parts:
            item = raw.get(part) or {}
            out[part] = Stock(part, int(item.get("qty", 0)), str(item.get("warehouse", "")))
        return out
