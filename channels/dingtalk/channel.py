"""The DingTalk robot channel (钉钉机器人), HTTP callback or stream mode.

Inbound: in ``mode: http`` DingTalk POSTs each robot message to
``/dingtalk/{account}`` with ``timestamp``/``sign`` headers; in ``mode: stream`` the
worker holds a websocket to DingTalk (:mod:`channels.dingtalk.stream`) and needs no
public URL. Both turn the same JSON into an :class:`InboundMessage` and queue it.

Outbound: through the message's ``sessionWebhook`` while it is valid (no token, lowest
latency), otherwise through the robot API with the app token: ``oToMessages/batchSend``
for a 1:1 chat, ``groupMessages/send`` for a group.

Docs: https://open.dingtalk.com/document/orgapp/receive-message
      https://open.dingtalk.com/document/orgapp/robot-reply-and-send-messages
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.messages import MediaRef, OutboundMessage, ReplyKind
from channels.base import Channel, ChannelContext, Received, WebhookRequest, resolve_base_url
from channels.dingtalk.client import DingTalkClient
from channels.dingtalk.fake_api import FakeDingTalkAPI
from channels.dingtalk.parser import GROUP_CHAT, loads, to_message
from channels.dingtalk.sign import WINDOW_MS, check_sign
from channels.errors import PermanentSendError, UnknownAccount

if TYPE_CHECKING:
    from channels.dingtalk.stream import StreamIntake

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.dingtalk.com"
# Hosts DingTalk hands out session webhooks on. A sessionWebhook comes from a signed
# payload, but keeping the gateway from POSTing anywhere else costs nothing.
DEFAULT_WEBHOOK_HOSTS = ("oapi.dingtalk.com", "api.dingtalk.com")
# A webhook about to expire is not worth the race: use the API instead.
WEBHOOK_MARGIN_MS = 5_000


class DingTalkChannel(Channel):
    name = "dingtalk"
    display_name = {"zh": "钉钉", "en": "DingTalk"}
    recipient_field = "staff_id"
    compact = True  # work notifications are read on a phone lock screen
    fake_api = FakeDingTalkAPI

    def __init__(
        self,
        account: str,
        *,
        client: DingTalkClient,
        app_secret: str,
        mode: str = "http",
        webhook_hosts: frozenset[str] = frozenset(DEFAULT_WEBHOOK_HOSTS),
        window_ms: int = WINDOW_MS,
        stream: StreamIntake | None = None,
    ) -> None:
        super().__init__(account)
        if mode not in ("http", "stream"):
            raise ConfigError(f"channels.dingtalk[{account}]: mode must be http or stream, not {mode!r}")
        self.client = client
        self.mode = mode
        self._app_secret = app_secret  # the callback signature key is the app secret
        self._webhook_hosts = webhook_hosts
        self._window_ms = window_ms
        self.stream = stream

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        account = str(section["account"])
        missing = [k for k in ("app_key", "app_secret", "robot_code") if not section.get(k)]
        if missing:
            raise ConfigError(f"channels.dingtalk[{account}]: missing {', '.join(missing)}")
        base_url = resolve_base_url(section.get("api_base_url"), DEFAULT_API, ctx)
        client = DingTalkClient(
            ctx.http,
            ctx.tokens,
            app_key=str(section["app_key"]),
            app_secret=str(section["app_secret"]),
            robot_code=str(section["robot_code"]),
            base_url=base_url,
            timeout_s=float(section.get("timeout_s", 10.0)),
        )
        hosts = set(section.get("session_webhook_hosts") or DEFAULT_WEBHOOK_HOSTS)
        hosts.add(urlsplit(base_url).netloc)  # a fake API on loopback serves webhooks too
        mode = str(section.get("mode", "http"))
        stream = None
        if mode == "stream":
            # Imported here: the dingtalk-stream SDK is only needed by stream-mode accounts.
            from channels.dingtalk.stream import StreamIntake

            if ctx.enqueue is None:
                raise ConfigError(f"channels.dingtalk[{account}]: stream mode needs the inbound queue")
            stream = StreamIntake(
                ctx.http,
                account=account,
                app_key=str(section["app_key"]),
                app_secret=str(section["app_secret"]),
                base_url=base_url,
                enqueue=ctx.enqueue,
            )
        return cls(
            account,
            client=client,
            app_secret=str(section["app_secret"]),
            mode=mode,
            webhook_hosts=frozenset(hosts),
            window_ms=int(section.get("timestamp_window_ms", WINDOW_MS)),
            stream=stream,
        )

    # -- inbound ----------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> Received:
        if self.mode != "http":
            raise UnknownAccount(f"dingtalk account {self.account!r} is in stream mode")
        check_sign(request.headers.get("timestamp", ""), request.headers.get("sign", ""), self._app_secret, window_ms=self._window_ms)
        data = loads(request.body)
        message = to_message(data, self.account, request.body.decode("utf-8", errors="replace"))
        # Replies go out later; an empty JSON object tells DingTalk there is no inline reply.
        return Received(messages=(message,), ack_body="{}", ack_content_type="application/json")

    async def run_background(self, stop: asyncio.Event) -> None:
        if self.stream is not None:
            await self.stream.run(stop)

    # -- outbound ---------------------------------------------------------------------
    def reply_deadline(self, last_inbound_at: float, hints: Mapping[str, str]) -> float | None:
        # The robot API reaches staff at any time; others only through the session webhook.
        if hints.get("senderStaffId") or hints.get("conversationType") == GROUP_CHAT:
            return None
        expires = hints.get("sessionWebhookExpiredTime", "")
        return (int(expires) - WEBHOOK_MARGIN_MS) / 1000 if expires.isdigit() else last_inbound_at

    def _usable_webhook(self, reply: OutboundMessage) -> str:
        webhook = reply.hint("sessionWebhook")
        expires = reply.hint("sessionWebhookExpiredTime")
        if not webhook or not expires.isdigit():
            return ""
        if int(expires) - WEBHOOK_MARGIN_MS <= time.time() * 1000:
            return ""
        if urlsplit(webhook).netloc not in self._webhook_hosts:
            log.warning("dingtalk/%s: sessionWebhook on unexpected host %s ignored", self.account, urlsplit(webhook).netloc)
            return ""
        return webhook

    async def send_text(self, reply: OutboundMessage) -> None:
        await self._deliver(reply, {"msgtype": "text", "text": {"content": reply.text}}, "sampleText", {"content": reply.text})

    async def send(self, reply: OutboundMessage) -> None:
        if reply.kind is ReplyKind.NEWS and reply.articles:
            article = reply.articles[0]
            link = {"title": article.title, "text": article.description or article.title, "messageUrl": article.url, "picUrl": article.picurl}
            await self._deliver(
                reply,
                {"msgtype": "link", "link": link},
                "sampleLink",
                {"title": article.title, "text": link["text"], "messageUrl": article.url, "picUrl": article.picurl},
            )
            return
        await self.send_text(reply)

    async def _deliver(self, reply: OutboundMessage, webhook_body: Mapping[str, Any], msg_key: str, msg_param: Mapping[str, Any]) -> None:
        webhook = self._usable_webhook(reply)
        if webhook:
            try:
                await self.client.send_by_webhook(webhook, webhook_body)
                return
            except PermanentSendError as exc:
                # Refused (expired early, revoked): the robot API can still reach them.
                log.info("dingtalk/%s: sessionWebhook refused (%s); using the robot API", self.account, exc)
        if reply.hint("conversationType") == GROUP_CHAT:
            group = reply.hint("conversationId")
            if not group:
                raise PermanentSendError("group reply without conversationId")
            await self.client.group_send(group, msg_key, msg_param)
            return
        # 1:1: the robot API addresses staff ids; customers outside the org have none.
        user = reply.hint("senderStaffId") or (reply.recipient if not reply.extra else "")
        if not user:
            raise PermanentSendError("session webhook expired and the sender has no staff id")
        await self.client.batch_send([user], msg_key, msg_param)

    async def fetch_media(self, media: MediaRef) -> bytes:
        return await self.client.download(media.media_id)
