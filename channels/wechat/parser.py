"""WeChat service-account message XML -> :class:`bot.messages.InboundMessage`.

The format is Tencent's, shared with WeCom apps: see :mod:`channels.tencent_xml`.
Docs: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
"""

from __future__ import annotations

from bot.messages import InboundMessage
from channels import tencent_xml

CHANNEL = "wechat"


def to_message(fields: dict[str, str], account: str, raw: str) -> InboundMessage:
    return tencent_xml.to_message(fields, account, raw, channel=CHANNEL)
