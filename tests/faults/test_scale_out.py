"""Scale-out on loopback: 2 web and 2 worker processes (`kefu run --role ...`) on one
Redis and one MongoDB-protocol server; a burst through both web processes; one worker
SIGKILLed halfway. Every message is answered exactly once.

The platform is WeCom, whose duplicate check covers a send the killed worker had in
flight (see tests/faults/test_sigkill.py for WeChat's bound without it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom.simulator import signed_callback, text_xml
from tests.faults.processes import GatewayProcess
from tests.services import free_port
from tests.wecom.support import CORP_ID, WECOM_ACCOUNT, next_msg_id, wecom_config

pytestmark = pytest.mark.no_blockbuster  # starts and kills gateway processes

BURST = 40


async def test_two_web_two_workers_one_killed_every_message_answered_once(
    aiohttp_server: Any, redis_url: str, mongo_url: str, redis: Any, mongo: Any, tmp_path: Path
) -> None:
    fake = FakeWeComAPI()
    server = await aiohttp_server(fake.app())
    config = wecom_config(redis_url, mongo_url, str(server.make_url("")), claim_idle_ms=1000, workers=2)
    webs = [GatewayProcess(config, "web", tmp_path, f"web{i}", port=free_port()) for i in range(2)]
    workers = [GatewayProcess(config, "worker", tmp_path, f"worker{i}", port=free_port()) for i in range(2)]
    processes = webs + workers
    try:
        for process in processes:
            process.start()
        for process in processes:
            await process.wait_healthy()
        fake.latency_s = 0.05  # a platform's usual answer time

        async def post(http: aiohttp.ClientSession, i: int) -> int:
            query, body = signed_callback(WECOM_ACCOUNT, text_xml(CORP_ID, f"user{i}", f"你好 {i}", next_msg_id()))
            async with http.post(f"http://127.0.0.1:{webs[i % 2].port}/wecom/corp", params=query, data=body) as resp:
                return resp.status

        async with aiohttp.ClientSession() as http:
            statuses = await asyncio.gather(*(post(http, i) for i in range(BURST)))
        assert statuses == [200] * BURST
        deadline = time.monotonic() + 60
        while len(fake.sent) < BURST // 4:
            assert time.monotonic() < deadline, workers[0].log()
            await asyncio.sleep(0.02)
        workers[0].kill()
        while len({s["touser"] for s in fake.sent}) < BURST:
            assert time.monotonic() < deadline, workers[1].log()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # takeover is done; a duplicate would arrive now
    finally:
        for process in processes:
            process.stop()
    assert Counter(s["touser"] for s in fake.sent) == Counter({f"user{i}": 1 for i in range(BURST)})
    db = mongo.get_default_database()
    assert await db["messages"].count_documents({"direction": "in"}) == BURST
    statuses = [d["status"] async for d in db["messages"].find({"direction": "out"})]
    assert statuses == ["sent"] * BURST
