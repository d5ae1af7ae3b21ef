"""Build the requests WeChat would send, correctly signed and (in safe mode) encrypted.

Used by ``kefu simulate wechat`` to try the gateway without a WeChat account, and by the
tests and benchmarks to speak to the webhook exactly as the platform does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from channels.wechat.crypto import MessageCrypto, sha1_signature


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it across two sections, as XML requires.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(to_user: str, from_user: str, msg_type: str, fields: Mapping[str, str | int], *, create_time: int | None = None) -> str:
    parts = [
        f"<ToUserName>{_cdata(to_user)}</ToUserName>",
        f"<FromUserName>{_cdata(from_user)}</FromUserName>",
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}>{_cdata(value)}</{name}>")
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
    body = f"<xml><ToUserName>{_cdata('gh_kefu_demo')}</ToUserName><Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
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
