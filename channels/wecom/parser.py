"""WeCom app callback XML -> :class:`bot.messages.InboundMessage` (Tencent's shared format).

Docs: https://developer.work.weixin.qq.com/document/path/90239 (消息格式)
      https://developer.work.weixin.qq.com/document/path/90240 (事件格式)
"""

from __future__ import annotations

from bot.messages import InboundMessage
from channels import tencent_xml

CHANNEL = "wecom"


def to_message(fields: dict[str, str], account: str, raw: str) -> InboundMessage:
    return tencent_xml.to_message(fields, account, raw, channel=CHANNEL)
