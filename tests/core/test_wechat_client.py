"""The WeChat API client against the fake API over HTTP: media, images, news."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.messages import Article, MediaRef, OutboundMessage, ReplyKind
from bot.tokens import TokenCache
from channels.base import ChannelContext
from channels.errors import PermanentSendError
from channels.wechat import WeChatChannel
from channels.wechat.fake_api import FakeWeChatAPI


@pytest.fixture
async def channel(aiohttp_server: Any, redis: Redis) -> Any:
    fake = FakeWeChatAPI()
    server = await aiohttp_server(fake.app())
    async with aiohttp.ClientSession() as session:
        ctx = ChannelContext(http=session, redis=redis, tokens=TokenCache(redis))
        ch = WeChatChannel.from_settings(
            {"account": "a", "app_id": "wxA", "app_secret": "s", "token": "t", "api_base_url": str(server.make_url(""))}, ctx
        )
        yield ch, fake


def reply(**kw: Any) -> OutboundMessage:
    return OutboundMessage(channel="wechat", account="a", recipient="oU", conversation="c", idempotency_key="k", **kw)


async def test_download_voice_media(channel: Any) -> None:
    ch, fake = channel
    media_id = fake.add_media(b"#!AMR\n\x00\x01")
    assert await ch.fetch_media(MediaRef(media_id=media_id, format="amr")) == b"#!AMR\n\x00\x01"
    with pytest.raises(PermanentSendError, match="40007"):
        await ch.fetch_media(MediaRef(media_id="missing"))


async def test_image_reply_uploads_local_file_then_sends(channel: Any, tmp_path: Path) -> None:
    ch, fake = channel
    image = tmp_path / "qr.png"
    image.write_bytes(b"\x89PNG fake")
    await ch.send(reply(kind=ReplyKind.IMAGE, image_path=str(image), text="扫码核验工程师身份"))
    assert fake.sent[0]["msgtype"] == "image"
    assert fake.media[fake.sent[0]["image"]["media_id"]] == b"\x89PNG fake"
    assert fake.sent[1] == {"touser": "oU", "msgtype": "text", "text": {"content": "扫码核验工程师身份"}}


async def test_news_reply(channel: Any) -> None:
    ch, fake = channel
    await ch.send(reply(kind=ReplyKind.NEWS, articles=(Article(title="维修进度", url="https://example.com/t/1"),)))
    assert fake.sent[0]["msgtype"] == "news"
    assert fake.sent[0]["news"]["articles"][0]["title"] == "维修进度"
