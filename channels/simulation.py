"""What the platform simulators share: reading replies back from a Kefu fake API.

``kefu simulate <channel>`` posts a correctly signed request to the running gateway and
shows the customer what they would receive. Replies are read from the fake platform
API's record of sends (``GET <api>/_sent?touser=``), which exists only when the
account's ``api_base_url`` points at a Kefu fake (the embedded demo does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp


class SimulationError(Exception):
    """The simulated platform request could not be made or was refused."""


def cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections, as XML requires.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def api_base(gateway_url: str, account: Mapping[str, Any], default: str) -> str:
    """The account's API base; a path ("/_sim/wecom") is relative to the gateway."""
    base = str(account.get("api_base_url") or default).rstrip("/")
    return gateway_url.rstrip("/") + base if base.startswith("/") else base


async def count_sent(session: aiohttp.ClientSession, url: str, touser: str) -> int | None:
    """How many sends the fake recorded for ``touser``; None when no fake answers."""
    try:
        async with session.get(url, params={"touser": touser}) as resp:
            if resp.status != 200:
                return None
            return len(await resp.json())
    except (aiohttp.ClientError, ValueError):
        return None


async def wait_replies(
    session: aiohttp.ClientSession, url: str, touser: str, before: int, wait_s: float, settle_s: float
) -> list[str]:
    """The sends to ``touser`` after the first ``before``, once some arrived (or [])."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        async with session.get(url, params={"touser": touser}) as resp:
            sent = await resp.json()
        if len(sent) > before:
            # Give multi-part answers a moment to arrive together.
            await asyncio.sleep(settle_s)
            async with session.get(url, params={"touser": touser}) as resp:
                sent = await resp.json()
            return [describe(s) for s in sent[before:]]
    return []


def describe(sent: Mapping[str, Any]) -> str:
    """One Tencent-style send (``msgtype`` + body) as the customer would see it."""
    kind = sent.get("msgtype")
    if kind == "text":
        return str(sent["text"]["content"])
    if kind == "news":
        article = sent["news"]["articles"][0]
        return f"[news] {article.get('title', '')} {article.get('url', '')}".strip()
    if kind == "image":
        return f"[image {sent['image']['media_id']}]"
    return f"[{kind}]"
