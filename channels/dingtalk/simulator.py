"""Build the requests DingTalk would send, correctly signed, and read what came back.

Used by ``kefu simulate dingtalk`` to try the gateway without a DingTalk org, and by the
tests and benchmarks to speak to the webhook exactly as the platform does. Replies are
read from the fake DingTalk API's record of sends, so the account's ``api_base_url``
must point at a Kefu fake (``/_sim/dingtalk`` with ``simulator: true``). For an account
in ``mode: stream`` the message is pushed through the fake's stream gateway instead of
the HTTP callback, so the gateway's worker must hold the stream connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from channels.dingtalk.sign import compute_sign

_ids = itertools.count(1)


def signed_headers(app_secret: str, *, timestamp: str | None = None) -> dict[str, str]:
    """The ``timestamp``/``sign`` headers DingTalk puts on a callback."""
    timestamp = timestamp or str(int(time.time() * 1000))
    return {"timestamp": timestamp, "sign": compute_sign(timestamp, app_secret), "Content-Type": "application/json; charset=utf-8"}


def robot_message(
    sender: str,
    *,
    text: str = "",
    msgtype: str = "text",
    content: Mapping[str, Any] | None = None,
    conversation_id: str | None = None,
    group: bool = False,
    session_webhook: str = "",
    webhook_valid_s: float = 5400.0,
    robot_code: str = "dingrobot",
    msg_id: str | None = None,
    staff_id: bool = True,
) -> dict[str, Any]:
    """A robot message as DingTalk sends it (HTTP body or stream ``data``)."""
    now_ms = int(time.time() * 1000)
    data: dict[str, Any] = {
        "conversationId": conversation_id or f"cid{sender}==",
        "chatbotCorpId": "dingcorp",
        "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": msg_id or f"msg{os.getpid()}x{next(_ids)}x{now_ms}",
        "senderNick": "模拟用户",
        "isAdmin": False,
        "sessionWebhookExpiredTime": now_ms + int(webhook_valid_s * 1000),
        "createAt": now_ms,
        "senderCorpId": "dingcorp",
        "conversationType": "2" if group else "1",
        "senderId": f"$:LWCP_v1:${sender}",
        "robotCode": robot_code,
        "msgtype": msgtype,
    }
    if staff_id:
        data["senderStaffId"] = sender
    if session_webhook:
        data["sessionWebhook"] = session_webhook
    if group:
        data["conversationTitle"] = "模拟群"
        data["isInAtList"] = True
    if msgtype == "text":
        data["text"] = {"content": text}
    elif content is not None:
        data["content"] = dict(content)
    return data


class SimulationError(Exception):
    pass


@dataclass(frozen=True)
class SimulateOptions:
    sender: str = "simstaff001"
    text: str = ""
    voice: Path | None = None
    wait_s: float = 15.0
    settle_s: float = 0.5


async def simulate(session: aiohttp.ClientSession, gateway_url: str, account: Mapping[str, Any], opts: SimulateOptions) -> list[str]:
    """Send one robot message to the running gateway; return the replies DingTalk got."""
    base = str(account.get("api_base_url") or "https://api.dingtalk.com").rstrip("/")
    api = gateway_url.rstrip("/") + base if base.startswith("/") else base
    conversation = f"cidSim{opts.sender}"
    webhook = f"{api}/robot/sendBySession?session={conversation}.{os.urandom(4).hex()}"
    query = {"conversation": conversation, "user": opts.sender}
    before = await _count(session, f"{api}/_sent", query)
    if opts.voice is not None:
        if before is None:
            raise SimulationError("--voice needs the fake DingTalk API (api_base_url: /_sim/dingtalk) to hold the file")
        audio = await asyncio.to_thread(opts.voice.read_bytes)
        async with session.post(f"{api}/_files", data=audio) as resp:
            code = str((await resp.json())["downloadCode"])
        data = robot_message(opts.sender, msgtype="audio", content={"downloadCode": code, "duration": 3000}, conversation_id=conversation, session_webhook=webhook, robot_code=str(account.get("robot_code", "")))
    else:
        data = robot_message(opts.sender, text=opts.text, conversation_id=conversation, session_webhook=webhook, robot_code=str(account.get("robot_code", "")))
    if account.get("mode") == "stream":
        async with session.post(f"{api}/_stream/push", json=data) as resp:
            if resp.status != 200:
                raise SimulationError(f"fake stream gateway answered {resp.status}: {await resp.text()}")
    else:
        body = json.dumps(data, ensure_ascii=False).encode()
        headers = signed_headers(str(account["app_secret"]))
        async with session.post(f"{gateway_url.rstrip('/')}/dingtalk/{account['account']}", data=body, headers=headers) as resp:
            if resp.status != 200:
                raise SimulationError(f"gateway answered {resp.status}: {(await resp.text()).strip()}")
    if before is None:
        return []
    deadline = time.monotonic() + opts.wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        sent = await _list(session, f"{api}/_sent", query)
        if len(sent) > before:
            await asyncio.sleep(opts.settle_s)  # let multi-part answers arrive together
            return [str(s.get("text") or f"[{s.get('msgtype') or s.get('msgKey')}]") for s in (await _list(session, f"{api}/_sent", query))[before:]]
    return []


async def _list(session: aiohttp.ClientSession, url: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
    async with session.get(url, params=query) as resp:
        data = await resp.json()
    return list(data) if isinstance(data, list) else []


async def _count(session: aiohttp.ClientSession, url: str, query: Mapping[str, str]) -> int | None:
    try:
        async with session.get(url, params=query) as resp:
            if resp.status != 200:
                return None
            return len(await resp.json())
    except (aiohttp.ClientError, ValueError):
        return None
