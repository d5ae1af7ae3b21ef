"""`kefu simulate wecom_kf` against a gateway that mounts the fake KF API under /_sim."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.app import build_app
from bot.cli import main as kefu_main
from bot.config import settings_from_mapping
from channels.wecom_kf.simulator import SimulateOptions, simulate
from tests.services import free_port
from tests.wecom.support import KF_ACCOUNT


async def test_simulated_customer_gets_the_reply(aiohttp_server: Any, aiohttp_client: Any, redis_url: str, mongo_url: str, redis: Any) -> None:
    port = free_port()
    account = {**KF_ACCOUNT, "api_base_url": "/_sim/wecom_kf"}
    config = {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "simulator": True,
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {"wecom_kf": [account]},
    }
    await aiohttp_client(await aiohttp_server(build_app(settings_from_mapping(config, env={})), port=port))
    async with aiohttp.ClientSession() as session:
        replies = await simulate(session, f"http://127.0.0.1:{port}", account, SimulateOptions(text="查询维修进度", wait_s=10))
        assert len(replies) == 1 and "查询维修进度" in replies[0]
        second = await simulate(session, f"http://127.0.0.1:{port}", account, SimulateOptions(sender="wmOther", text="hello", wait_s=10))
        assert len(second) == 1 and "hello" in second[0]


def test_cli_knows_the_channel() -> None:
    # `kefu simulate wecom_kf` imports channels.wecom_kf.simulator by name.
    import importlib

    module = importlib.import_module("channels.wecom_kf.simulator")
    assert {"sender", "text", "voice", "event", "wait_s"} <= set(module.SimulateOptions.__dataclass_fields__)
    assert callable(kefu_main)
