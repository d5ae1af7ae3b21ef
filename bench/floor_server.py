"""The floor of a webhook benchmark: a bare aiohttp server doing only what a channel's
``receive()`` does (verify, decrypt, parse), with no dedup, queue or store.

Run by the benchmarks as ``python bench/floor_server.py CHANNEL PORT ACCOUNT_JSON``; the
channel comes from the same registry the gateway uses, so the floor measures exactly
the gateway's parsing code.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.tokens import TokenCache  # noqa: E402
from channels import BUILTIN_CHANNELS  # noqa: E402
from channels.base import ChannelContext, WebhookRequest  # noqa: E402


async def serve(channel_name: str, port: int, account: dict[str, object]) -> None:
    session = aiohttp.ClientSession()
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never used: receive() does no I/O
    channel = BUILTIN_CHANNELS[channel_name].from_settings(account, ChannelContext(http=session, redis=redis, tokens=TokenCache(redis)))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        received = channel.receive(WebhookRequest("POST", request.query, request.headers, body))
        return web.Response(text=received.ack_body, content_type=received.ack_content_type)

    app = web.Application()
    for path in channel.route_paths():
        app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def command(channel_name: str, port: int, account: dict[str, object]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), channel_name, str(port), json.dumps(account)]


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
