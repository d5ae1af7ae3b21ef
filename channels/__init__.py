"""Messaging platforms. Adding one = one module + one line in ``CHANNEL_CLASSES``."""

from __future__ import annotations

from channels.base import Channel
from channels.dingtalk import DingTalkChannel
from channels.email import EmailChannel
from channels.wechat import WeChatChannel
from channels.wecom import WeComChannel
from channels.wecom_kf import WeComKfChannel

CHANNEL_CLASSES: list[type[Channel]] = [
    WeChatChannel,
    DingTalkChannel,
    EmailChannel,
    WeComChannel,
    WeComKfChannel,
]

BUILTIN_CHANNELS: dict[str, type[Channel]] = {c.name: c for c in CHANNEL_CLASSES}

# Fakes of the platforms' APIs, mounted under /_sim/<name> when `simulator: true`, so the
# embedded demo and `kefu simulate` run without platform accounts. "module:Class", each
# class offering app() -> aiohttp.web.Application.
SIMULATED_APIS: dict[str, str] = {
    "wechat": "channels.wechat.fake_api:FakeWeChatAPI",
    "dingtalk": "channels.dingtalk.fake_api:FakeDingTalkAPI",
    "wecom": "channels.wecom.fake_api:FakeWeComAPI",
    "wecom_kf": "channels.wecom_kf.fake_api:FakeWeComKfAPI",
}
