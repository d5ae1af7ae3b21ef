"""Build the requests WeChat would send, correctly signed and (in safe mode) encrypted.

Used by ``kefu simulate wechat`` to try the gateway without a WeChat account, and by the
tests and benchmarks to speak to the webhook exactly as the platform does.
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

from channels.simulation import SimulationError, api_base, cdata, count_sent, wait_replies
from channels.wechat.crypto import MessageCrypto, sha1_signature

__all__ = ["SimulateOptions", "SimulationError", "simulate"]




def message_xml(to_user: str, from_user: str, msg_type: str, fields: Mapping[str, str | int], *, create_time: int | None = None) -> str:
    parts = [
        f"<ToUserName>{cdata(to_user)}</ToUserName>",
        f"<FromUserName>{cdata(from_user)}</FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}>{cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(from_user: str, text: str, msg_id: int, *, to_user: str = "gh_kefu_demo", create_time: int | None = None) -> str:
    return message_xml(to_user, from_user, "text", {"Content": text, "MsgId": msg_id}, create_time=create_time)


def voice_xml(from_user: str, media_id: str, msg_id: int, *, fmt: str = "amr", recognition: str = "", to_user: str = "gh_kefu_demo") -> str:
    fields: dict[str, str | int] = {"MediaId": media_id, "Format": fmt, "MsgId": msg_id}
    if recognition:
        fields["Recognition"] = recognition
    return message_xml(to_user, from_user, "voice", fields)


def event_xml(from_user: str, event: str, *, event_key: str = "", to_user: str = "gh_kefu_demo", create_time: int | None = None) -> str:
    fields: dict[str, str | int] = {"Event": event}
    if event_key:
        fields["EventKey"] = event_key
    return message_xml(to_user, from_user, "event", fields, create_time=create_time)


def signed_request(
    account: Mapping[str, Any], xml: str, *, timestamp: str | None = None, nonce: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a POST as WeChat sends it to this account."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(int.from_bytes(os.urandom(4), "big"))
    token = str(account["token"])
    query = {"signature": sha1_signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": "simulated"}
    aes_key = account.get("encoding_aes_key")
    if not aes_key:
        return query, xml.encode()
    crypto = MessageCrypto(token, str(aes_key), str(account["app_id"]))
    encrypted, msg_signature, _, _ = crypto.encrypt(xml, timestamp=timestamp, nonce=nonce)
    query.update(encrypt_type="aes", msg_signature=msg_signature)
    body = f"<xml><ToUserName>{cdata('gh_kefu_demo')}</ToUserName><Encrypt>{cdata(encrypted)}</Encrypt></xml>"
    return query, body.encode()


def verification_query(account: Mapping[str, Any], echostr: str, *, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    nonce = "20250101"
    return {
        "signature": sha1_signature(str(account["token"]), timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }


async def simulate(session: aiohttp.ClientSession, gateway_url: str, account: Mapping[str, Any], opts: SimulateOptions) -> list[str]:
    """Send one message to the running gateway as WeChat would; return what came back.

    Replies are read from the fake WeChat API's record of sends, so this shows them only
    when the account's ``api_base_url`` points at a Kefu fake (the embedded demo does).
    """
    api = api_base(gateway_url, account, "https://api.weixin.qq.com")
    sent_url = f"{api}/_sent"
    before = await count_sent(session, sent_url, opts.sender)
    if opts.voice is not None:
        if before is None:
            raise SimulationError("--voice needs the fake WeChat API (api_base_url: /_sim/wechat) to hold the media")
        media_id = await _upload(session, api, account, opts.voice)
        xml = voice_xml(opts.sender, media_id, int(time.time() * 1000))
    elif opts.event:
        xml = event_xml(opts.sender, opts.event)
    else:
        xml = text_xml(opts.sender, opts.text, int(time.time() * 1000))
    query, body = signed_request(account, xml)
    async with session.post(f"{gateway_url.rstrip('/')}/wechat/{account['account']}", params=query, data=body) as resp:
        answer = await resp.text()
        if resp.status != 200:
            raise SimulationError(f"gateway answered {resp.status}: {answer.strip()}")
    if before is None:
        return []
    return await wait_replies(session, sent_url, opts.sender, before, opts.wait_s, opts.settle_s)


@dataclass(frozen=True)
class SimulateOptions:
    sender: str = "oSimulatedCustomer"
    text: str = ""
    voice: Path | None = None
    event: str = ""
    wait_s: float = 15.0
    settle_s: float = 0.5


async def _upload(session: aiohttp.ClientSession, api: str, account: Mapping[str, Any], path: Path) -> str:
    async with session.post(
        f"{api}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": account["app_id"], "secret": account["app_secret"]},
    ) as resp:
        token = (await resp.json())["access_token"]
    form = aiohttp.FormData()
    form.add_field("media", await asyncio.to_thread(path.read_bytes), filename=path.name)
    async with session.post(f"{api}/cgi-bin/media/upload", params={"access_token": token, "type": "voice"}, data=form) as resp:
        return str((await resp.json())["media_id"])
