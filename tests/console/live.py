"""Reading the console's server-sent events from a test, as a browser's EventSource would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class EventReader:
    """An open ``/admin/events`` stream; ``next`` returns the next event's data."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str) -> EventReader:
        response = await http.get(url, headers={"Accept": "text/event-stream"})
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        reader = cls(response)
        return reader

    async def next(self, timeout_s: float = 5.0, *, where: Any = None) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            kind, data = "", ""
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("the event stream ended")
                line = line.rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
                elif line == "" and data:
                    event = json.loads(data)
                    assert event["type"] == kind
                    if where is None or where(event):
                        return dict(event)
                    kind, data = "", ""

        return await asyncio.wait_for(read(), timeout_s)

    def close(self) -> None:
        self.response.close()
