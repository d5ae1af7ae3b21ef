"""The WeCom (企业微信) self-built app channel.

Inbound: ``GET /wecom/{account}`` answers the URL check by decrypting ``echostr``;
``POST`` takes callbacks, always encrypted with the CorpID as receive id. The webhook
answers an empty body at once (WeCom's "reply later" answer) and every reply goes out
through the app-message API, so WeCom's 5-second deadline is never in play.

Docs: https://developer.work.weixin.qq.com/document/path/90238 (接收消息与事件 概述)
      https://developer.work.weixin.qq.com/document/path/90236 (发送应用消息)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from bot.errors import ConfigError
from bot.messages import OutboundMessage
from channels.base import ChannelContext, Received, WebhookRequest
from channels.tencent_channel import TencentChannel
from channels.wecom.client import WeComClient
from channels.wecom.crypto import CallbackCrypto
from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom.parser import to_message

REQUIRED = ("corp_id", "secret", "token", "encoding_aes_key")


def required_settings(channel: str, section: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The account name, after checking that ``keys`` are all set."""
    account = str(section["account"])
    missing = [k for k in keys if section.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"channels.{channel}[{account}]: missing {', '.join(missing)}")
    return account


class WeComChannel(TencentChannel):
    """One WeCom self-built app (自建应用) of one corp."""

    name = "wecom"
    display_name = {"zh": "企业微信", "en": "WeCom"}
    recipient_field = "userid"
    fake_api = FakeWeComAPI
    max_articles = 8  # WeCom takes up to 8 articles per news message
    client: WeComClient

    def __init__(self, account: str, *, agent_id: int, client: WeComClient, crypto: CallbackCrypto) -> None:
        super().__init__(account)
        self.agent_id = agent_id
        self.client = client
        self._crypto = crypto

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        account = required_settings(cls.name, section, REQUIRED + ("agent_id",))
        try:
            agent_id = int(section["agent_id"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"channels.wecom[{account}]: agent_id must be a number") from exc
        crypto = CallbackCrypto.from_settings(section)
        client = WeComClient.from_settings(section, ctx)
        return cls(account, agent_id=agent_id, client=client, crypto=crypto)

    def verify_url(self, request: WebhookRequest) -> str:
        return self._crypto.verify_url(request.query)

    def receive(self, request: WebhookRequest) -> Received:
        fields, raw = self._crypto.open(request.query, request.body)
        # An empty body tells WeCom "no passive reply, do not retry".
        return Received(messages=(to_message(fields, self.account, raw),), ack_body="")

    # -- outbound -------------------------------------------------------------------
    def _payload(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"touser": reply.recipient, "msgtype": msgtype, "agentid": self.agent_id, msgtype: dict(body)}

    async def post(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> None:
        await self.client.send_message(self._payload(reply, msgtype, body))
