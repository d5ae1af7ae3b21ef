"""What the Tencent platforms' channels (WeChat, WeCom, WeCom customer service) share
when sending: every message is ``{"msgtype": t, t: body}`` addressed their own way, an
image is uploaded from its local file first, and media are fetched by id.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from bot.messages import MediaRef, OutboundMessage, ReplyKind
from channels.base import Channel
from channels.tencent_api import TencentApiClient


class TencentChannel(Channel):
    #: Articles a news message may carry; 0: the platform needs more than a link for
    #: one (WeCom KF's thumbnail), so the first article goes out as a text with its URL.
    max_articles: ClassVar[int] = 0
    client: TencentApiClient

    @abc.abstractmethod
    async def post(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> None:
        """Send one message of ``msgtype`` to the reply's recipient."""

    async def send_text(self, reply: OutboundMessage) -> None:
        await self.post(reply, "text", {"content": reply.text})

    async def send(self, reply: OutboundMessage) -> None:
        if reply.kind is ReplyKind.IMAGE and (reply.media_id or reply.image_path):
            await self.post(reply, "image", {"media_id": await self._image_media_id(reply)})
            if reply.text:
                await self.send_text(reply)
            return
        if reply.kind is ReplyKind.NEWS and reply.articles:
            if self.max_articles:
                articles = [
                    {"title": a.title, "description": a.description, "url": a.url, "picurl": a.picurl}
                    for a in reply.articles[: self.max_articles]
                ]
                await self.post(reply, "news", {"articles": articles})
                return
            if not reply.text:
                article = reply.articles[0]
                text = "\n".join(p for p in (article.title, article.description, article.url) if p)
                await self.post(reply, "text", {"content": text})
                return
        await self.send_text(reply)

    async def fetch_media(self, media: MediaRef) -> bytes:
        return await self.client.download_media(media.media_id)

    async def _image_media_id(self, reply: OutboundMessage) -> str:
        if reply.media_id:
            return reply.media_id
        path = Path(reply.image_path)
        content = await asyncio.to_thread(path.read_bytes)
        return await self.client.upload_media("image", path.name, content)
