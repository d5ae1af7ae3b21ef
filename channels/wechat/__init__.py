"""WeChat service account: crypto, parser, API client, channel, fake API for tests."""

from channels.wechat.channel import WeChatChannel

__all__ = ["WeChatChannel"]
