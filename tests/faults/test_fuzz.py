"""A seeded fuzzer over every webhook parser and the email parser.

Parser level (hypothesis, derandomized so CI sees the same cases every run): whatever
the bytes, a parser either returns a message the queue can encode or raises the
channel layer's own rejection, never anything else. Signed garbage is included: the
signature proves who sent it, not that it is well-formed.

HTTP level (a seeded random mutator): hostile unsigned requests to every webhook of a
running gateway get a 4xx, never a 5xx, queue nothing and log no traceback.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.messages import InboundMessage
from bot.queue import InboundQueue
from channels.dingtalk.parser import loads, to_message as dingtalk_message
from channels.dingtalk.sign import check_sign
from channels.email.parser import MalformedMail, parse_mail
from channels.errors import WebhookRejected
from channels.wechat.crypto import check_signature
from channels.wechat.parser import to_message as wechat_message
from channels.wecom.parser import to_message as wecom_message
from channels.wecom_kf.parser import item_to_message
from channels.xml import parse_flat_xml
from tests.dingtalk.conftest import DingHarness
from tests.harness import Harness
from tests.wecom.support import Gateway

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with the characters hostile senders like: surrogates, NUL, RTL marks, CJK, emoji.
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
TENCENT_FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey",
                  "MediaId", "Format", "Location_X", "Location_Y", "Latitude", "Longitude", "Label", "Url", "AgentID"]


def queueable(message: InboundMessage | None) -> None:
    """What the webhook would hand the queue must encode (repaired if need be)."""
    if message is not None:
        InboundQueue._encode(message)


def tencent_xml(fields: dict[str, str]) -> bytes:
    def cdata(v: str) -> str:
        return "<![CDATA[" + v.replace("]]>", "") + "]]>"

    inner = "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items())
    return ("<xml>" + inner + "</xml>").encode("utf-8", "surrogatepass")


@FUZZ
@given(st.binary(max_size=300))
def test_tencent_xml_bytes(body: bytes) -> None:
    try:
        fields = parse_flat_xml(body)
        queueable(wechat_message(fields, "acct", body.decode("utf-8", "replace")))
        queueable(wecom_message(fields, "acct", ""))
    except WebhookRejected:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(TENCENT_FIELDS), texts, max_size=10))
def test_tencent_xml_fields(fields: dict[str, str]) -> None:
    try:
        parsed = parse_flat_xml(tencent_xml(fields))
        queueable(wechat_message(parsed, "acct", ""))
        queueable(wecom_message(parsed, "acct", ""))
    except WebhookRejected:
        pass


@FUZZ
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_dingtalk_json(body: bytes) -> None:
    try:
        queueable(dingtalk_message(loads(body), "robot", body.decode("utf-8", "replace")))
    except WebhookRejected:
        pass


@FUZZ
@given(
    st.fixed_dictionaries(
        {"msgId": texts, "conversationId": texts, "senderStaffId": texts, "msgtype": st.sampled_from(["text", "richText", "picture", "audio", "file", "video", "x"])},
        optional={"text": json_values, "content": json_values, "createAt": json_values, "sessionWebhook": texts},
    )
)
def test_dingtalk_message_shapes(data: dict[str, Any]) -> None:
    try:
        queueable(dingtalk_message(loads(json.dumps(data).encode()), "robot", ""))
    except WebhookRejected:
        pass


@FUZZ
@given(
    st.fixed_dictionaries(
        {"msgid": texts, "open_kfid": texts, "external_userid": texts, "origin": st.sampled_from([3, 4, 5, "3", None]),
         "msgtype": st.sampled_from(["text", "voice", "image", "file", "location", "link", "event", "video", ""])},
        optional={"text": json_values, "voice": json_values, "location": json_values, "link": json_values,
                  "event": json_values, "send_time": json_values, "servicer_userid": json_values},
    )
)
def test_wecom_kf_items(item: dict[str, Any]) -> None:
    try:
        queueable(item_to_message(item, "kf"))
    except WebhookRejected:
        pass


@FUZZ
@given(st.binary(max_size=600), st.lists(st.sampled_from([
    b"From: a@x.com\r\n", b"From: =?utf-8?b?5a6i?= <\xff@x>\r\n", b"Subject: =?gb2312?b?xOO6ww==?=\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n", b"--B\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Type: text/plain; charset=x-unknown\r\n", b"\r\n", b"Message-ID: <\xfe@x>\r\n",
]), max_size=8))
def test_email_parser(tail: bytes, headers: list[bytes]) -> None:
    try:
        mail = parse_mail(b"".join(headers) + tail)
    except MalformedMail:
        return
    for value in (mail.sender, mail.subject, mail.text, mail.message_id):
        value.encode("utf-8", "surrogateescape")  # what the email channel then makes safe


@FUZZ
@given(texts, texts, texts)
def test_signatures(given_signature: str, timestamp: str, nonce: str) -> None:
    with pytest.raises(WebhookRejected):
        check_signature(("token", timestamp, nonce), given_signature)
    with pytest.raises(WebhookRejected):
        check_sign(timestamp, given_signature, "secret")


# -- HTTP level -------------------------------------------------------------------------

SEED = 20261207


def hostile(rng: random.Random) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """Query, body and headers of a request no platform signed."""
    junk = [
        "", "0" * 40, "签名", "\x00", "a" * 5000, "%ff", "../../etc/passwd", "1e999", "-1", "\u202e",
    ]
    query = {k: rng.choice(junk) for k in rng.sample(["signature", "msg_signature", "timestamp", "nonce", "openid", "encrypt_type", "echostr"], rng.randint(0, 7))}
    if "encrypt_type" in query and rng.random() < 0.5:
        query["encrypt_type"] = "aes"
    bodies = [
        b"", b"<xml>", b"<xml><Encrypt>AAAA</Encrypt></xml>", b'<!DOCTYPE x [<!ENTITY a "b">]><xml/>',
        b"[" * 5000, b'{"msgId": "1", "conversationId": "c", "senderId": "s", "msgtype": "text", "text": {"content": "\\ud800"}}',
        '<?xml version="1.0" encoding="UTF-16"?><xml/>'.encode("utf-16"), bytes(rng.randrange(256) for _ in range(rng.randint(0, 400))),
    ]
    body = rng.choice(bodies)
    headers = {}
    if rng.random() < 0.3:
        headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "identity", "x-zip"])
    if rng.random() < 0.3:
        headers["timestamp"], headers["sign"] = rng.choice(junk[:5]), rng.choice(junk)
    return query, body, headers


async def assert_hostile_requests_refused(client: Any, paths: list[str], rt: Any, caplog: pytest.LogCaptureFixture, count: int = 80) -> None:
    rng = random.Random(SEED)
    caplog.set_level(logging.DEBUG)
    for i in range(count):
        query, body, headers = hostile(rng)
        method = "GET" if i % 7 == 0 else "POST"
        try:
            resp = await client.request(method, rng.choice(paths), params=query, data=body, headers=headers)
        except Exception:
            continue  # the server dropped a request it could not parse at all: fine
        assert resp.status < 500, (query, body[:80], headers, await resp.text())
        assert 400 <= resp.status < 500, (query, body[:80], headers, resp.status)
    assert await rt.redis.xlen(rt.queue.stream) == 0  # nothing was queued: no reply can follow
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]


async def test_http_wechat(web_only: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await assert_hostile_requests_refused(web_only.client, ["/wechat/plain", "/wechat/demo", "/wechat/nobody"], web_only.runtime, caplog)


async def test_http_wecom_and_kf(wecom_gateway: Gateway, kf_gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    await assert_hostile_requests_refused(wecom_gateway.client, ["/wecom/corp"], wecom_gateway.runtime, caplog)
    await assert_hostile_requests_refused(kf_gateway.client, ["/wecom_kf/kf"], kf_gateway.runtime, caplog)


async def test_http_dingtalk(ding: DingHarness, caplog: pytest.LogCaptureFixture) -> None:
    await assert_hostile_requests_refused(ding.client, ["/dingtalk/robot"], ding.runtime, caplog)
