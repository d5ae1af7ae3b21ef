"""Stream mode: the worker holds the websocket; frames become queued messages and acks.

DingTalk's own gateway cannot be reached here; the fake serves ``connections/open`` and
a websocket speaking the same frame protocol (the SDK's frame classes parse it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.runtime import RUNTIME
from channels.dingtalk.channel import DingTalkChannel
from channels.dingtalk.fake_api import FakeDingTalkAPI
from channels.dingtalk.simulator import SimulateOptions, robot_message, simulate
from tests.dingtalk.conftest import STREAM, config


@pytest.fixture
async def stream_gateway(aiohttp_client: Any, fake_dingtalk: tuple[FakeDingTalkAPI, TestServer], redis_url: str, mongo_url: str, redis: Any) -> Any:
    fake, server = fake_dingtalk
    url = str(server.make_url("")).rstrip("/")
    settings = settings_from_mapping(config(redis_url, mongo_url, url, STREAM), env={})
    client = await aiohttp_client(build_app(settings))
    return client, fake, url


async def test_stream_message_is_acked_and_answered(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    webhook = f"{url}/robot/sendBySession?session=cidS1.x"
    ack = await fake.push(robot_message("streamstaff", text="stream 你好", conversation_id="cidS1", session_webhook=webhook))
    assert ack["code"] == 200
    sent = await fake.wait_sent(1)
    assert sent[0]["via"] == "webhook" and "stream 你好" in sent[0]["text"]
    doc = await client.app[RUNTIME].store.messages.find_one({"sender": "streamstaff"})
    assert doc is not None and doc["account"] == "streamer"


async def test_unreadable_frame_is_acked_not_crashing(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    ack = await fake.push({"msgtype": "text"})  # no msgId: never readable, so ack (no redelivery)
    assert ack["code"] == 200
    ack = await fake.push(robot_message("after", text="still alive", session_webhook=f"{url}/robot/sendBySession?session=cidafter.x"))
    assert ack["code"] == 200
    await fake.wait_sent(1)


async def test_reconnects_after_disconnect(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    await fake.wait_stream()
    channel = client.app[RUNTIME].channel("dingtalk", "streamer")
    assert isinstance(channel, DingTalkChannel) and channel.stream is not None
    channel.stream._reconnect_s = 0.05
    await fake.disconnect_streams()
    for _ in range(100):
        if channel.stream.connections >= 2:
            break
        await asyncio.sleep(0.05)
    assert channel.stream.connections >= 2 and fake.stream_opens >= 2
    ack = await fake.push(robot_message("re", text="after reconnect", session_webhook=f"{url}/robot/sendBySession?session=cidre.x"))
    assert ack["code"] == 200


async def test_stop_ends_the_intake(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    await fake.wait_stream()
    channel = client.app[RUNTIME].channel("dingtalk", "streamer")
    assert isinstance(channel, DingTalkChannel) and channel.stream is not None
    stop = asyncio.Event()
    task = asyncio.create_task(channel.stream.run(stop))
    for _ in range(100):
        if channel.stream.connections >= 2:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 2.0)  # returns by itself, no cancellation needed


async def test_stream_simulator(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    await fake.wait_stream()
    replies = await simulate(client.session, str(client.make_url("")), {**STREAM, "api_base_url": url}, SimulateOptions(sender="simstream", text="via stream", wait_s=5, settle_s=0.1))
    assert len(replies) == 1 and "via stream" in replies[0]


async def test_stream_account_refuses_http_callbacks(stream_gateway: Any) -> None:
    client, fake, url = stream_gateway
    resp = await client.post("/dingtalk/streamer", data=b"{}", headers={"timestamp": "1", "sign": "x"})
    assert resp.status == 404
