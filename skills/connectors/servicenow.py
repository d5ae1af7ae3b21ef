"""Incidents in ServiceNow through the Table API.

Docs: https://docs.servicenow.com/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
``POST /api/now/table/incident`` with basic auth or a bearer token; the answer is
``{"result": {"sys_id": "...", "number": "INC0010001", ...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skills.connectors.base import Connector, ConnectorUnavailable


@dataclass(frozen=True, slots=True)
class Incident:
    sys_id: str
    number: str


class ServiceNowConnector(Connector):
    name = "servicenow"

    async def create_incident(self, fields: Mapping[str, Any]) -> Incident:
        """Create an incident; ``fields`` are incident columns (short_description, ...).

        ``correlation_id`` should carry our ticket id so that a retried call after a lost
        answer can be recognised on ServiceNow's side.
        """
        data = await self.request("POST", "/api/now/table/incident", json=dict(fields))
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, dict) or not result.get("sys_id"):
            raise ConnectorUnavailable(self.name, "bad_answer", f"no result in {data!r:.200}")
        return Incident(str(result["sys_id"]), str(result.get("number", "")))
