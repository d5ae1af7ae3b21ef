"""Messaging platforms. Adding one = one package + one line in ``CHANNEL_CLASSES``.

Everything else about a channel (its recipient field, display name, layout, fake API) is
an attribute of its class; tables elsewhere are derived from the registry the
composition root builds with :func:`channel_registry`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from channels.base import Channel
from channels.dingtalk import DingTalkChannel
from channels.email import EmailChannel
from channels.wechat import WeChatChannel
from channels.wecom import WeComChannel
from channels.wecom_kf import WeComKfChannel

# The order is the default notification order: a customer who chose none is tried on
# their addresses in this order.
CHANNEL_CLASSES: tuple[type[Channel], ...] = (
    WeChatChannel,
    WeComChannel,
    WeComKfChannel,
    DingTalkChannel,
    EmailChannel,
)


def channel_registry(classes: Iterable[type[Channel]]) -> Mapping[str, type[Channel]]:
    """Name -> class, read-only; a name given twice is an error."""
    out: dict[str, type[Channel]] = {}
    for cls in classes:
        if cls.name in out:
            raise ValueError(f"two channels are named {cls.name!r}")
        out[cls.name] = cls
    return MappingProxyType(out)


BUILTIN_CHANNELS: Mapping[str, type[Channel]] = channel_registry(CHANNEL_CLASSES)
