"""Messaging platforms. Adding one = one module + one line in ``CHANNEL_CLASSES``."""

from __future__ import annotations

from channels.base import Channel
from channels.wechat import WeChatChannel

CHANNEL_CLASSES: list[type[Channel]] = [
    WeChatChannel,
]

BUILTIN_CHANNELS: dict[str, type[Channel]] = {c.name: c for c in CHANNEL_CLASSES}
