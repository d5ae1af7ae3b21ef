"""WeCom's official WXBizMsgCrypt sample vectors, through our crypto and our channel.

The vectors are Tencent's own: the WXBizMsgCrypt sample code (Sample.py / Sample.cs /
Sample.java ...) of the official download linked from the WeCom developer docs page
"加解密库下载与返回码" (https://developer.work.weixin.qq.com/document/path/90307):
token "QDG6eK", CorpID "wx5823bf96d3bd56c7", EncodingAESKey
"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", a VerifyURL request and a DecryptMsg
request. Their timestamps are from 2014, so the channel under test runs with the
timestamp window switched off (``timestamp_window_s: 0``).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.messages import MessageKind
from channels.base import ChannelContext, WebhookRequest
from channels.errors import BadSignature, DecryptFailed, MalformedPayload, StaleTimestamp
from channels.wecom.channel import WeComChannel
from channels.wecom.crypto import CallbackCrypto

TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

# GET /cgi-bin/wxpush?msg_signature=5c45ff5e...&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzy...
VERIFY_URL = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
VERIFY_URL_PLAIN = "1616140317555161061"

# POST /cgi-bin/wxpush?msg_signature=477715d1...&timestamp=1409659813&nonce=1372623149
DECRYPT_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
DECRYPT_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Q"
    "czcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kz"
    "Js8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1"
    "s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wL"
    "VMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1"
    "ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
).encode()


@pytest.fixture
def crypto() -> CallbackCrypto:
    return CallbackCrypto(TOKEN, AES_KEY, CORP_ID, timestamp_window_s=0)


@pytest.fixture
def channel(crypto: CallbackCrypto) -> WeComChannel:
    # verify_url/receive never touch the client: no session or Redis needed.
    return WeComChannel("sample", agent_id=218, client=None, crypto=crypto)  # type: ignore[arg-type]


def test_verify_url_vector(crypto: CallbackCrypto) -> None:
    assert crypto.verify_url(VERIFY_URL) == VERIFY_URL_PLAIN


def test_verify_url_vector_through_the_channel(channel: WeComChannel) -> None:
    # The echostr's plaintext is answered verbatim, nothing added.
    assert channel.verify_url(WebhookRequest("GET", VERIFY_URL, {}, b"")) == VERIFY_URL_PLAIN


def test_decrypt_msg_vector(crypto: CallbackCrypto) -> None:
    fields, raw = crypto.open(DECRYPT_QUERY, DECRYPT_BODY)
    assert raw.startswith("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>")
    assert fields == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }


def test_decrypt_msg_vector_through_the_channel(channel: WeComChannel) -> None:
    received = channel.receive(WebhookRequest("POST", DECRYPT_QUERY, {}, DECRYPT_BODY))
    (msg,) = received.messages
    assert received.ack_body == ""
    assert (msg.channel, msg.account, msg.sender, msg.kind, msg.text) == ("wecom", "sample", "mycreate", MessageKind.TEXT, "hello")
    assert msg.platform_id == "4561255354251345929"
    assert msg.conversation == "wecom:sample:mycreate"
    assert msg.timestamp == 1409659813.0


@pytest.mark.parametrize("field", ["msg_signature", "timestamp", "nonce"])
def test_any_changed_signed_part_is_refused(crypto: CallbackCrypto, field: str) -> None:
    query: dict[str, Any] = dict(DECRYPT_QUERY)
    query[field] = "1" + query[field][1:] if query[field][0] != "1" else "2" + query[field][1:]
    with pytest.raises(BadSignature):
        crypto.open(query, DECRYPT_BODY)
    verify = {**VERIFY_URL, field: query[field]}
    with pytest.raises(BadSignature):
        crypto.verify_url(verify)


def test_other_corp_cannot_open_the_vector() -> None:
    # Right token and key, but the ciphertext is sealed for wx5823bf96d3bd56c7.
    other = CallbackCrypto(TOKEN, AES_KEY, "ww0000000000000000", timestamp_window_s=0)
    with pytest.raises(DecryptFailed):
        other.open(DECRYPT_QUERY, DECRYPT_BODY)


def test_wrong_key_cannot_open_the_vector() -> None:
    other = CallbackCrypto(TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", CORP_ID, timestamp_window_s=0)
    with pytest.raises(DecryptFailed):
        other.open(DECRYPT_QUERY, DECRYPT_BODY)


def test_stale_timestamp_is_refused_with_the_window_on() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID, timestamp_window_s=300)
    with pytest.raises(StaleTimestamp):
        crypto.verify_url(VERIFY_URL)


def test_missing_echostr_and_encrypt(crypto: CallbackCrypto) -> None:
    with pytest.raises(MalformedPayload):
        crypto.verify_url({k: v for k, v in VERIFY_URL.items() if k != "echostr"})
    with pytest.raises(MalformedPayload):
        crypto.open(DECRYPT_QUERY, b"<xml><ToUserName>x</ToUserName></xml>")


def test_from_settings_requires_every_key() -> None:
    from bot.errors import ConfigError

    ctx = ChannelContext(http=None, redis=None, tokens=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="encoding_aes_key"):
        WeComChannel.from_settings({"account": "a", "corp_id": "ww1", "agent_id": 1, "secret": "s", "token": "t"}, ctx)
    with pytest.raises(ConfigError, match="agent_id"):
        WeComChannel.from_settings(
            {"account": "a", "corp_id": "ww1", "agent_id": "x", "secret": "s", "token": "t", "encoding_aes_key": AES_KEY}, ctx
        )
