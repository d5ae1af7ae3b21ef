"""/healthz, /readyz and /metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.simulator import signed_request, text_xml
from tests.faults.processes import GatewayProcess
from tests.harness import PLAIN_ACCOUNT, Harness, gateway_config, next_msg_id
from tests.services import free_port


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == want:
            return float(match.group(2))
    return 0.0


async def test_ready_and_healthy(gateway: Harness) -> None:
    assert (await gateway.client.get("/healthz")).status == 200
    resp = await gateway.client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200 and body["ready"] is True
    assert set(body["checks"]) == {"redis", "mongodb"}  # NLU and speech are off here


async def test_not_ready_names_what_is_missing(
    aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Any
) -> None:
    cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
    cfg["nlu"] = {"enabled": True, "urls": [f"http://127.0.0.1:{free_port()}"], "autostart": False}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={}), role="web"))
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["ready"] is False
    assert body["checks"]["redis"]["ok"] and body["checks"]["mongodb"]["ok"]
    assert not body["checks"]["nlu"]["ok"] and "127.0.0.1" in body["checks"]["nlu"]["detail"]
    assert (await client.get("/healthz")).status == 200  # alive all the same


async def test_metrics_count_webhooks_turns_and_sends(gateway: Harness) -> None:
    assert (await gateway.say("oMetrics", "你好")).status == 200
    forged, body = signed_request(PLAIN_ACCOUNT, text_xml("oMetrics", "x", next_msg_id()))
    forged["signature"] = "0" * 40
    assert (await gateway.client.post("/wechat/plain", params=forged, data=body)).status == 403
    await gateway.fake.wait_sent(1)
    await asyncio.sleep(0.3)
    resp = await gateway.client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert sample(text, "kefu_webhook_requests_total", channel="wechat", outcome="accepted") == 1
    assert sample(text, "kefu_webhook_requests_total", channel="wechat", outcome="bad_signature") == 1
    assert sample(text, "kefu_webhook_ack_seconds_count", channel="wechat", outcome="accepted") == 1
    assert sample(text, "kefu_worker_turn_seconds_count", channel="wechat") == 1
    assert sample(text, "kefu_outbox_sends_total", channel="wechat", outcome="sent") == 1
    assert "kefu_queue_depth" in text and "kefu_queue_oldest_age_seconds" in text
    assert sample(text, "kefu_job_seconds_count", job="outbox-delayed") > 0
    assert sample(text, "kefu_job_seconds_count", job="prefs-due") > 0


@pytest.mark.no_blockbuster  # starts and stops gateway processes
async def test_metrics_of_several_web_processes_are_merged(
    fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, redis: Any, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    processes = []
    for i in range(2):
        cfg = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))
        process = GatewayProcess(cfg, "web", tmp_path, f"web{i}", port=free_port())
        process.start(env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
        processes.append(process)
    try:
        async with aiohttp.ClientSession() as http:
            for process in processes:
                await process.wait_healthy()
                query, body = signed_request(PLAIN_ACCOUNT, text_xml(f"oMulti{process.port}", "hi", next_msg_id()))
                async with http.post(f"http://127.0.0.1:{process.port}/wechat/plain", params=query, data=body) as resp:
                    assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{processes[0].port}/metrics") as resp:
                text = await resp.text()
    finally:
        for process in processes:
            process.stop()
    assert sample(text, "kefu_webhook_requests_total", channel="wechat", outcome="accepted") == 2
