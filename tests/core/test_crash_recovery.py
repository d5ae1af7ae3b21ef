"""A worker that dies mid-message: its message is taken over and answered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, gateway_config


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "run", "--role", "worker"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.no_blockbuster  # the test itself manages subprocesses synchronously
async def test_worker_process_killed_mid_send_reply_sent_once(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Any, tmp_path: Path
) -> None:
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=1000)
    config = tmp_path / "kefu.yml"
    config.write_text(yaml.safe_dump(cfg))
    web = Harness(client=await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web")), fake=fake)

    fake.latency_s = 60.0  # the first worker will hang inside the customer-service send
    worker_a = start_worker(config, tmp_path / "a.log")
    try:
        resp = await web.say("oCrash", "在吗？")
        assert resp.status == 200
        for _ in range(300):
            if fake.send_calls >= 1:
                break
            await asyncio.sleep(0.05)
        assert fake.send_calls >= 1, (tmp_path / "a.log").read_text()
        os.killpg(worker_a.pid, signal.SIGKILL)  # dies with the send in flight, nothing acked
        worker_a.wait(10)
        fake.latency_s = 0.0
        assert fake.sent == []

        worker_b = start_worker(config, tmp_path / "b.log")
        try:
            await fake.wait_sent(1, timeout_s=30)
            await asyncio.sleep(2.0)  # a duplicate would arrive within this time
        finally:
            os.killpg(worker_b.pid, signal.SIGTERM)
            worker_b.wait(20)
    finally:
        if worker_a.poll() is None:
            os.killpg(worker_a.pid, signal.SIGKILL)
    assert len(fake.sent_to("oCrash")) == 1
    doc = await web.runtime.store.messages.find_one({"direction": "out", "recipient": "oCrash"})
    assert doc is not None and doc["status"] == "sent"


class HangOnce(Skill):
    """Hangs on its first turn (a worker stuck or killed mid-skill), then answers."""

    name = "hang_once"

    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()

    def accepts(self, turn: Turn) -> bool:
        return True

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            await asyncio.sleep(3600)
        return (Reply(text=f"answer to {turn.text}"),)


async def test_worker_task_dies_mid_skill_message_taken_over(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Any
) -> None:
    fake, server = fake_wechat
    skill = HangOnce()
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=500)
    settings = settings_from_mapping(cfg, env={})

    def skills(_templates: Templates) -> list[list[Skill]]:
        return [[skill]]

    first = await aiohttp_client(build_app(settings, skills=skills))
    harness = Harness(client=first, fake=fake)
    await harness.say("oStuck", "hello")
    await asyncio.wait_for(skill.entered.wait(), 10)
    await first.close()  # the process with the stuck worker goes away; nothing was acked

    second = await aiohttp_client(build_app(settings, skills=skills))
    await fake.wait_sent(1, timeout_s=15)
    await asyncio.sleep(1.5)
    assert [s["text"]["content"] for s in fake.sent_to("oStuck")] == ["answer to hello"]
    assert skill.calls == 2
    await second.close()
