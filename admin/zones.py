"""Time zones by name, loaded off the event loop once (ZoneInfo reads tzdata files)."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webui.errors import BadInput

_loaded: dict[str, ZoneInfo] = {}


async def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; raises BadInput for an unknown one."""
    found = _loaded.get(name)
    if found is None:
        try:
            found = await asyncio.to_thread(ZoneInfo, name)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(f"unknown time zone {name!r}") from None
        _loaded[name] = found
    return found
