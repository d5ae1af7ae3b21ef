"""Build the callbacks WeCom would send, signed and encrypted, and play a customer.

Used by ``kefu simulate wecom`` to try the gateway without a WeCom corp, and by the
tests and the benchmark to speak to the webhook exactly as WeCom does.

Docs: https://developer.work.weixin.qq.com/document/path/90930 (回调的加解密)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from channels.simulation import SimulationError, cdata, count_sent, describe, wait_replies
from channels.simulation import api_base as shared_api_base
from channels.wechat.crypto import MessageCrypto

__all__ = ["SimulationError", "cdata", "count_sent", "describe", "wait_replies"]


@dataclass(frozen=True)
class SimulateOptions:
    sender: str = "SimulatedEmployee"
    text: str = ""
    voice: Path | None = None
    event: str = ""
    wait_s: float = 15.0
    settle_s: float = 0.5


def app_message_xml(
    corp_id: str,
    from_user: str,
    msg_type: str,
    fields: Mapping[str, str | int],
    *,
    agent_id: int = 1000002,
    create_time: int | None = None,
) -> str:
    parts = [
        f"<ToUserName>{cdata(corp_id)}</ToUserName>",
        f"<FromUserName>{cdata(from_user)}</FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}>{cdata(value)}</{name}>")
    parts.append(f"<AgentID>{agent_id}</AgentID>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(corp_id: str, from_user: str, text: str, msg_id: int, *, agent_id: int = 1000002) -> str:
    return app_message_xml(corp_id, from_user, "text", {"Content": text, "MsgId": msg_id}, agent_id=agent_id)


def voice_xml(corp_id: str, from_user: str, media_id: str, msg_id: int, *, fmt: str = "amr", agent_id: int = 1000002) -> str:
    return app_message_xml(corp_id, from_user, "voice", {"MediaId": media_id, "Format": fmt, "MsgId": msg_id}, agent_id=agent_id)


def event_xml(corp_id: str, from_user: str, event: str, *, event_key: str = "", agent_id: int = 1000002) -> str:
    fields: dict[str, str | int] = {"Event": event}
    if event_key:
        fields["EventKey"] = event_key
    return app_message_xml(corp_id, from_user, "event", fields, agent_id=agent_id)


def signed_callback(
    account: Mapping[str, Any], xml: str, *, timestamp: str | None = None, nonce: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a POST as WeCom sends it to this account."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(int.from_bytes(os.urandom(4), "big"))
    corp_id = str(account["corp_id"])
    crypto = MessageCrypto(str(account["token"]), str(account["encoding_aes_key"]), corp_id)
    encrypted, msg_signature, _, _ = crypto.encrypt(xml, timestamp=timestamp, nonce=nonce)
    query = {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce}
    agent = f"<AgentID>{cdata(str(account['agent_id']))}</AgentID>" if account.get("agent_id") else ""
    body = f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><Encrypt>{cdata(encrypted)}</Encrypt>{agent}</xml>"
    return query, body.encode()


def verification_query(account: Mapping[str, Any], plain_echo: str, *, timestamp: str | None = None) -> dict[str, str]:
    """The GET WeCom sends when an admin saves the callback URL."""
    timestamp = timestamp or str(int(time.time()))
    nonce = "1372623149"
    crypto = MessageCrypto(str(account["token"]), str(account["encoding_aes_key"]), str(account["corp_id"]))
    echostr, msg_signature, _, _ = crypto.encrypt(plain_echo, timestamp=timestamp, nonce=nonce)
    return {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}


def api_base(gateway_url: str, account: Mapping[str, Any]) -> str:
    return shared_api_base(gateway_url, account, "https://qyapi.weixin.qq.com")


async def simulate(session: aiohttp.ClientSession, gateway_url: str, account: Mapping[str, Any], opts: SimulateOptions) -> list[str]:
    """Send one message to the running gateway as WeCom would; return what came back.

    Replies are read from the fake WeCom API's record of sends, so they show only when
    the account's ``api_base_url`` points at a Kefu fake (``/_sim/wecom``).
    """
    api = api_base(gateway_url, account)
    sent_url = f"{api}/_sent"
    before = await count_sent(session, sent_url, opts.sender)
    corp_id = str(account["corp_id"])
    agent_id = int(account.get("agent_id") or 0)
    msg_id = int(time.time() * 1000)
    if opts.voice is not None:
        if before is None:
            raise SimulationError("--voice needs the fake WeCom API (api_base_url: /_sim/wecom) to hold the media")
        media_id = await upload(session, api, account, opts.voice)
        xml = voice_xml(corp_id, opts.sender, media_id, msg_id, agent_id=agent_id)
    elif opts.event:
        xml = event_xml(corp_id, opts.sender, opts.event, agent_id=agent_id)
    else:
        xml = text_xml(corp_id, opts.sender, opts.text, msg_id, agent_id=agent_id)
    query, body = signed_callback(account, xml)
    async with session.post(f"{gateway_url.rstrip('/')}/wecom/{account['account']}", params=query, data=body) as resp:
        if resp.status != 200:
            raise SimulationError(f"gateway answered {resp.status}: {(await resp.text()).strip()}")
    if before is None:
        return []
    return await wait_replies(session, sent_url, opts.sender, before, opts.wait_s, opts.settle_s)


async def upload(session: aiohttp.ClientSession, api: str, account: Mapping[str, Any], path: Path) -> str:
    async with session.get(
        f"{api}/cgi-bin/gettoken", params={"corpid": str(account["corp_id"]), "corpsecret": str(account["secret"])}
    ) as resp:
        token = (await resp.json())["access_token"]
    form = aiohttp.FormData()
    form.add_field("media", await asyncio.to_thread(path.read_bytes), filename=path.name)
    async with session.post(f"{api}/cgi-bin/media/upload", params={"access_token": token, "type": "voice"}, data=form) as resp:
        return str((await resp.json())["media_id"])
