"""The WeChat service account (公众号) channel.

Inbound: ``GET /wechat/{account}`` answers URL verification, ``POST`` takes messages in
plaintext, compatible or safe (AES) mode. Every reply goes out later through the
customer-service message API, so the webhook always answers ``success`` at once and
WeChat's 5-second deadline is never in play.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Self

from bot.errors import ConfigError
from bot.messages import OutboundMessage
from channels.base import ChannelContext, Received, WebhookRequest, resolve_base_url
from channels.errors import BadSignature, MalformedPayload
from channels.tencent_channel import TencentChannel
from channels.wechat.client import WeChatClient
from channels.wechat.crypto import MessageCrypto, check_signature, check_timestamp
from channels.wechat.fake_api import FakeWeChatAPI
from channels.wechat.parser import to_message
from channels.xml import parse_flat_xml

log = logging.getLogger(__name__)


class WeChatChannel(TencentChannel):
    name = "wechat"
    display_name = {"zh": "微信", "en": "WeChat"}
    recipient_field = "openid"
    fake_api = FakeWeChatAPI
    reply_window_s = 48 * 3600.0  # customer-service messages: 48 h after the user's last message
    max_articles = 1  # WeChat allows one article per news message since 2018
    client: WeChatClient

    def __init__(
        self,
        account: str,
        *,
        token: str,
        client: WeChatClient,
        crypto: MessageCrypto | None,
        timestamp_window_s: int = 300,
    ) -> None:
        super().__init__(account)
        self._token = token
        self.client = client
        self._crypto = crypto
        self._window = timestamp_window_s

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        account = str(section["account"])
        missing = [k for k in ("app_id", "app_secret", "token") if not section.get(k)]
        if missing:
            raise ConfigError(f"channels.wechat[{account}]: missing {', '.join(missing)}")
        app_id = str(section["app_id"])
        aes_key = section.get("encoding_aes_key")
        crypto = MessageCrypto(str(section["token"]), str(aes_key), app_id) if aes_key else None
        client = WeChatClient(
            ctx.http,
            ctx.tokens,
            app_id=app_id,
            app_secret=str(section["app_secret"]),
            base_url=resolve_base_url(section.get("api_base_url"), "https://api.weixin.qq.com", ctx),
            timeout_s=float(section.get("timeout_s", 10.0)),
        )
        return cls(
            account,
            token=str(section["token"]),
            client=client,
            crypto=crypto,
            timestamp_window_s=int(section.get("timestamp_window_s", 300)),
        )

    @property
    def safe_mode(self) -> bool:
        return self._crypto is not None

    def _check_request_signature(self, query: Mapping[str, str]) -> tuple[str, str]:
        timestamp = query.get("timestamp", "")
        nonce = query.get("nonce", "")
        check_signature((self._token, timestamp, nonce), query.get("signature", ""))
        check_timestamp(timestamp, self._window)
        return timestamp, nonce

    def verify_url(self, request: WebhookRequest) -> str:
        self._check_request_signature(request.query)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise MalformedPayload("echostr missing")
        return echostr

    def receive(self, request: WebhookRequest) -> Received:
        timestamp, nonce = self._check_request_signature(request.query)
        encrypted = request.query.get("encrypt_type", "raw") == "aes"
        if self._crypto is not None:
            # With a key configured, plaintext would be a downgrade anyone can forge
            # with the token alone: refuse it.
            if not encrypted:
                raise BadSignature("account is in safe mode but the request is not encrypted")
            outer = parse_flat_xml(request.body)
            cipher = outer.get("Encrypt", "")
            if not cipher:
                raise MalformedPayload("Encrypt element missing")
            raw = self._crypto.verify_and_decrypt(cipher, request.query.get("msg_signature", ""), timestamp, nonce)
            fields = parse_flat_xml(raw)
        else:
            if encrypted:
                raise MalformedPayload("encrypted request but no encoding_aes_key is configured")
            raw = request.body.decode("utf-8", errors="replace")
            fields = parse_flat_xml(request.body)
        return Received(messages=(to_message(fields, self.account, raw),))

    # -- outbound -------------------------------------------------------------------
    async def post(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> None:
        await self.client.send_custom({"touser": reply.recipient, "msgtype": msgtype, msgtype: dict(body)})
