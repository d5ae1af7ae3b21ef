"""Play a WeChat customer writing to a WeCom KF account, the way WeCom delivers it.

The customer's message goes into the fake KF API's message log first (WeCom keeps it
for ``kf/sync_msg``), then the signed, encrypted ``kf_msg_or_event`` callback announces
it to the gateway, exactly as WeCom does. Used by ``kefu simulate wecom_kf``, the tests
and the benchmark.

Docs: https://kf.weixin.qq.com/api/doc/path/94670 (接收消息和事件)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from channels.wecom.simulator import SimulationError, api_base, cdata, count_sent, signed_callback, upload, wait_replies

DEFAULT_OPEN_KFID = "wkSimulatedKefu0001"


@dataclass(frozen=True)
class SimulateOptions:
    sender: str = "wmSimulatedCustomer"  # the customer's external_userid
    text: str = ""
    voice: Path | None = None
    event: str = ""
    open_kfid: str = DEFAULT_OPEN_KFID
    wait_s: float = 15.0
    settle_s: float = 0.5


def callback_xml(corp_id: str, open_kfid: str, token: str, *, create_time: int | None = None) -> str:
    """The decrypted body of a kf_msg_or_event callback."""
    return (
        "<xml>"
        f"<ToUserName>{cdata(corp_id)}</ToUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
        f"<MsgType>{cdata('event')}</MsgType>"
        f"<Event>{cdata('kf_msg_or_event')}</Event>"
        f"<Token>{cdata(token)}</Token>"
        f"<OpenKfId>{cdata(open_kfid)}</OpenKfId>"
        "</xml>"
    )


def signed_kf_callback(
    account: Mapping[str, Any], open_kfid: str, token: str, *, create_time: int | None = None
) -> tuple[dict[str, str], bytes]:
    """Query and body of the callback POST WeCom sends to this account."""
    return signed_callback(account, callback_xml(str(account["corp_id"]), open_kfid, token, create_time=create_time))


async def simulate(session: aiohttp.ClientSession, gateway_url: str, account: Mapping[str, Any], opts: SimulateOptions) -> list[str]:
    """Write as a customer, announce it to the gateway, return the replies the customer got.

    Needs the account's ``api_base_url`` to point at a Kefu fake (``/_sim/wecom_kf``):
    the message has to be somewhere ``kf/sync_msg`` can fetch it from.
    """
    api = api_base(gateway_url, account)
    sent_url = f"{api}/_sent"
    before = await count_sent(session, sent_url, opts.sender)
    if before is None:
        raise SimulationError("wecom_kf simulation needs the fake WeCom KF API (api_base_url: /_sim/wecom_kf)")
    item: dict[str, Any] = {"open_kfid": opts.open_kfid, "external_userid": opts.sender}
    if opts.voice is not None:
        item.update(msgtype="voice", voice={"media_id": await upload(session, api, account, opts.voice)})
    elif opts.event:
        item["event"] = opts.event
    else:
        item.update(msgtype="text", text=opts.text)
    async with session.post(f"{api}/_kf/messages", json=item) as resp:
        if resp.status != 200:
            raise SimulationError(f"fake KF API answered {resp.status}")
        token = str((await resp.json())["token"])
    query, body = signed_kf_callback(account, opts.open_kfid, token)
    async with session.post(f"{gateway_url.rstrip('/')}/wecom_kf/{account['account']}", params=query, data=body) as resp:
        if resp.status != 200:
            raise SimulationError(f"gateway answered {resp.status}: {(await resp.text()).strip()}")
    return await wait_replies(session, sent_url, opts.sender, before, opts.wait_s, opts.settle_s)
