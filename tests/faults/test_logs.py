"""What the logs say: one classified line per rejected request, no customer data above
DEBUG, JSON lines with conversation and message refs, honest takeover messages."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.errors import ConfigError
from bot.logs import ContextFilter, JsonFormatter, configure, context, ref
from bot.queue import StreamGroup
from channels.dingtalk.fake_api import FakeDingTalkAPI
from channels.dingtalk.simulator import robot_message, signed_headers
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import event_xml, signed_request, text_xml
from tests.dingtalk.conftest import ROBOT, DingHarness
from tests.harness import PLAIN_ACCOUNT, Harness, gateway_config, next_msg_id
from tests.wecom.support import Gateway

def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # aiohttp's access log is on in the test server and off in `kefu run` (run_app with
    # access_log=None): WeChat puts the customer's openid in the callback's query string.
    return [r for r in caplog.records if r.levelno > logging.DEBUG and r.name != "aiohttp.access"]


def assert_one_clean_line(caplog: pytest.LogCaptureFixture, code: str) -> None:
    lines = loud(caplog)
    assert [r for r in lines if code in r.getMessage()], [r.getMessage() for r in lines]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"


async def test_non_ascii_signature_is_one_line(web_only: Harness, caplog: pytest.LogCaptureFixture) -> None:
    query, body = signed_request(PLAIN_ACCOUNT, text_xml("oX", "hi", next_msg_id()))
    query["signature"] = "签名" * 20
    caplog.set_level(logging.DEBUG)
    resp = await web_only.client.post("/wechat/plain", params=query, data=body)
    assert resp.status == 403
    assert_one_clean_line(caplog, "bad_signature")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
async def test_bad_content_encoding_is_one_line(web_only: Harness, caplog: pytest.LogCaptureFixture, encoding: str) -> None:
    query, body = signed_request(PLAIN_ACCOUNT, text_xml("oX", "hi", next_msg_id()))
    caplog.set_level(logging.DEBUG)
    try:
        resp = await web_only.client.post("/wechat/plain", params=query, data=body, headers={"Content-Encoding": encoding})
        status = resp.status
    except Exception:
        status = 0  # aiohttp may drop the connection on a codec it does not know
    await asyncio.sleep(0.1)  # aiohttp's own error path runs after the answer
    assert status in (400, 0)
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert len(loud(caplog)) <= 1
    if "bad_encoding" in (await resp.text() if status else ""):
        assert_one_clean_line(caplog, "bad_encoding")
    # else aiohttp refused the request itself (a codec it cannot even start), silently


async def test_utf16_envelope_on_wecom_is_one_line(wecom_gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    body = '<?xml version="1.0" encoding="UTF-32"?><xml><Encrypt>x</Encrypt></xml>'.encode()
    caplog.set_level(logging.DEBUG)
    resp = await wecom_gateway.post("/wecom/corp", {"msg_signature": "x", "timestamp": "1", "nonce": "2"}, body)
    assert resp.status == 400
    assert_one_clean_line(caplog, "bad_encoding")


async def test_deeply_nested_dingtalk_json_is_one_line(ding: DingHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await ding.client.post("/dingtalk/robot", data=b"[" * 200_000, headers=signed_headers(ROBOT["app_secret"]))
    assert resp.status == 400
    assert_one_clean_line(caplog, "too_deep")


async def test_a_flood_of_forgeries_is_rate_limited(web_only: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(50):
        query, body = signed_request(PLAIN_ACCOUNT, text_xml("oX", "hi", next_msg_id()))
        query["signature"] = "0" * 40
        assert (await web_only.client.post("/wechat/plain", params=query, data=body)).status == 403
    assert len(loud(caplog)) == 1


SECRET_TEXT = "我的身份证号是110101199003077777"
CUSTOMER = "oPrivateCustomer7"


async def test_no_customer_text_or_id_above_debug_across_a_conversation(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], fake_dingtalk: tuple[FakeDingTalkAPI, TestServer],
    redis_url: str, mongo_url: str, redis: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    # One gateway with both channels: gateways sharing a Redis share its queue.
    ding_url = str(fake_dingtalk[1].make_url("")).rstrip("/")
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    cfg["channels"]["dingtalk"] = [{**ROBOT, "api_base_url": ding_url}]
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    gateway = Harness(client=client, fake=fake_wechat[0])
    ding = DingHarness(client=client, fake=fake_dingtalk[0], fake_url=ding_url)
    caplog.set_level(logging.DEBUG)
    fake = gateway.fake
    fake.fail_next(1)  # the first reply fails once and is retried
    assert (await gateway.post_xml(event_xml(CUSTOMER, "subscribe"), PLAIN_ACCOUNT)).status == 200
    assert (await gateway.say(CUSTOMER, SECRET_TEXT, account=PLAIN_ACCOUNT)).status == 200
    assert (await gateway.say(CUSTOMER, "转人工 " + SECRET_TEXT, account=PLAIN_ACCOUNT)).status == 200
    forged, body = signed_request(PLAIN_ACCOUNT, text_xml(CUSTOMER, SECRET_TEXT, next_msg_id()))
    forged["signature"] = "1" * 40
    assert (await gateway.client.post("/wechat/plain", params=forged, data=body)).status == 403
    data = robot_message(CUSTOMER, text=SECRET_TEXT + " \ud800", conversation_id="cidPrivate", session_webhook=ding.webhook("cidPrivate"))
    resp = await ding.client.post("/dingtalk/robot", data=json.dumps(data).encode(), headers=signed_headers(ROBOT["app_secret"]))
    assert resp.status == 200
    await fake.wait_sent(2, timeout_s=15)
    await ding.fake.wait_sent(1, timeout_s=15)
    await asyncio.sleep(1.0)
    assert any(r.levelno > logging.DEBUG for r in caplog.records)  # the run did log
    secrets = (CUSTOMER, SECRET_TEXT, "110101199003077777", "cidPrivate")
    for record in loud(caplog):
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert not any(s in text for s in secrets), text


def test_json_lines_carry_conversation_and_message_refs() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kefu.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with context(conversation="wechat:demo:oAbc", message="wechat:demo:123"):
            logger.warning("send failed")
        logger.warning("no turn")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "send failed" and first["level"] == "WARNING"
    assert first["conversation"] == ref("wechat:demo:oAbc") and first["message_id"] == ref("wechat:demo:123")
    assert "oAbc" not in out.getvalue()
    assert "conversation" not in second


def test_log_format_is_checked() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with pytest.raises(ConfigError):
            configure({"format": "xml"})
        configure({"format": "json", "level": "WARNING"})
        assert isinstance(root.handlers[-1].formatter, JsonFormatter)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


async def test_takeover_message_says_whose_entries(redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    here = StreamGroup(redis, "kefu:test:takeover", "g", claim_idle_ms=50)
    elsewhere = StreamGroup(redis, "kefu:test:takeover", "g", claim_idle_ms=50)  # another process
    await here.ensure_group()
    await redis.xadd("kefu:test:takeover", {"m": b"1"})
    await redis.xadd("kefu:test:takeover", {"m": b"2"})
    assert len(await here.read("a", count=1, block_ms=10)) == 1
    assert len(await elsewhere.read("b", count=1, block_ms=10)) == 1
    await asyncio.sleep(0.1)
    caplog.set_level(logging.INFO)
    assert len(await here.read("a", count=10, block_ms=10)) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying 1 entries this consumer left pending" in m for m in messages), messages
    assert any("took over 1 entries" in m and "another consumer" in m for m in messages), messages
