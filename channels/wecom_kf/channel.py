"""The WeCom customer service (微信客服) channel.

``GET /wecom_kf/{account}`` answers the URL check and ``POST`` takes callbacks, both
encrypted like every WeCom callback. A callback (``kf_msg_or_event``) only says that
messages are waiting: it is queued like a message, deduplicated by its one-time Token,
and in the worker :meth:`WeComKfChannel.expand` fetches the messages with
``kf/sync_msg`` from the persisted cursor, queues each customer message on its own
(deduplicated by msgid) and moves the cursor only after they are queued. Replies go out
through ``kf/send_msg`` to the (open_kfid, external_userid) the message came from.

Docs: https://kf.weixin.qq.com/api/doc/path/94670 (接收消息和事件)
      https://kf.weixin.qq.com/api/doc/path/94745 (读取消息)
      https://kf.weixin.qq.com/api/doc/path/94744 (发送消息)
      https://kf.weixin.qq.com/api/doc/path/94669 (分配客服会话)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Self

from bot.errors import ConfigError
from bot.messages import InboundMessage, OutboundMessage
from channels.base import ChannelContext, Received, WebhookRequest
from channels.errors import MalformedPayload, PermanentSendError
from channels.tencent_channel import TencentChannel
from channels.wecom.channel import REQUIRED, required_settings
from channels.wecom.crypto import CallbackCrypto
from channels.wecom_kf.client import ServiceState, SessionState, WeComKfClient
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from channels.wecom_kf.parser import (
    SYNC_EVENT,
    VOICE_FORMATS,
    callback_to_message,
    conversation_id,
    item_to_message,
    split_conversation,
)
from channels.wecom_kf.sync import SyncState

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[InboundMessage]], Awaitable[int]]


def _voice_format(value: Any) -> int:
    names = {v: k for k, v in VOICE_FORMATS.items()}
    if value in (None, ""):
        return 0
    if str(value).lower() in names:
        return names[str(value).lower()]
    if str(value) in ("0", "1"):
        return int(value)
    raise ConfigError(f"voice_format must be amr or silk, not {value!r}")


class WeComKfChannel(TencentChannel):
    """The KF accounts (open_kfid) of one corp, reached with the corp's KF secret."""

    name = "wecom_kf"
    display_name = {"zh": "微信客服", "en": "WeChat customer service"}
    recipient_field = "external_userid"
    # A customer talks to one KF account (open_kfid); kf/send_msg must name it.
    address_extras = ("open_kfid",)
    fake_api = FakeWeComKfAPI
    reply_window_s = 48 * 3600.0  # kf/send_msg: within 48 h of the customer's last message
    client: WeComKfClient

    @classmethod
    def address_of(cls, sender: str, conversation: str) -> dict[str, str]:
        ids = split_conversation(conversation)
        if ids is None:
            return {cls.recipient_field: sender}
        return {cls.recipient_field: sender, "open_kfid": ids[0]}

    @classmethod
    def conversation_for(cls, account: str, address: Mapping[str, str]) -> str:
        open_kfid = address.get("open_kfid", "")
        if not open_kfid:
            return super().conversation_for(account, address)
        return conversation_id(account, open_kfid, address[cls.recipient_field])

    def __init__(
        self,
        account: str,
        *,
        client: WeComKfClient,
        crypto: CallbackCrypto,
        state: SyncState,
        enqueue: Enqueue | None,
        voice_format: int = 0,
        page_limit: int = 1000,
        max_pages: int = 200,
    ) -> None:
        super().__init__(account)
        self.servicers: dict[str, str] = {}  # Kefu agent name -> WeCom servicer userid
        self.client = client
        self._crypto = crypto
        self.state = state
        self._enqueue = enqueue
        self.voice_format = voice_format
        self.page_limit = page_limit
        self.max_pages = max_pages

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        account = required_settings(cls.name, section, REQUIRED)
        corp_id = str(section["corp_id"])
        crypto = CallbackCrypto.from_settings(section)
        client = WeComKfClient.from_settings(section, ctx)
        channel = cls(
            account,
            client=client,
            crypto=crypto,
            state=SyncState(ctx.redis, corp_id),
            enqueue=ctx.enqueue,
            voice_format=_voice_format(section.get("voice_format")),
            page_limit=int(section.get("sync_page_limit", 1000)),
        )
        channel.servicers = {str(k): str(v) for k, v in (section.get("servicers") or {}).items()}
        return channel

    # -- inbound --------------------------------------------------------------------
    def verify_url(self, request: WebhookRequest) -> str:
        return self._crypto.verify_url(request.query)

    def receive(self, request: WebhookRequest) -> Received:
        fields, raw = self._crypto.open(request.query, request.body)
        return Received(messages=(callback_to_message(fields, self.account, raw),), ack_body="")

    async def expand(self, message: InboundMessage) -> Sequence[InboundMessage]:
        """A callback stands for the messages ``kf/sync_msg`` returns; others for themselves."""
        open_kfid = message.hint("open_kfid")
        if message.event != SYNC_EVENT or not open_kfid or message.sender != open_kfid:
            return (message,)
        await self.sync(open_kfid, message.hint("sync_token"))
        return ()

    async def sync(self, open_kfid: str, token: str = "") -> int:
        """Queue every message waiting for ``open_kfid``; returns how many were new.

        The order is what makes it lossless: fetch a page, queue its messages, then
        persist the next cursor. A crash in between fetches the same page again and the
        queue's dedup (by msgid) drops what was already queued.
        """
        if self._enqueue is None:
            raise ConfigError("wecom_kf needs ChannelContext.enqueue to queue synced messages")
        queued = 0
        async with self.state.lease(open_kfid) as lease:
            cursor = await self.state.cursor(open_kfid)
            for _ in range(self.max_pages):
                page = await self.client.sync_msg(
                    cursor=cursor, token=token, open_kfid=open_kfid, limit=self.page_limit, voice_format=self.voice_format
                )
                messages = self._messages(page.items)
                if messages:
                    queued += await self._enqueue(messages)
                if page.next_cursor and page.next_cursor != cursor:
                    await lease.save_cursor(page.next_cursor)
                    cursor = page.next_cursor
                elif page.has_more:
                    # has_more without a new cursor would loop forever on one page.
                    log.error("wecom_kf %s: has_more without a new cursor at %r; stopping", open_kfid, cursor)
                    break
                if not page.has_more:
                    break
            else:
                log.warning("wecom_kf %s: %d pages in one sync; the next callback continues", open_kfid, self.max_pages)
        return queued

    def _messages(self, items: Sequence[Mapping[str, Any]]) -> list[InboundMessage]:
        messages: list[InboundMessage] = []
        for item in items:
            try:
                msg = item_to_message(item, self.account, voice_format=self.voice_format)
            except MalformedPayload as exc:
                # One bad item must not pin the cursor: skipping it is the lesser loss.
                log.error("wecom_kf %s: skipped unreadable sync item %r: %s", self.account, item, exc)
                continue
            if msg is not None:
                messages.append(msg)
        return messages

    # -- outbound -------------------------------------------------------------------
    @staticmethod
    def _open_kfid(reply: OutboundMessage) -> str:
        open_kfid = reply.hint("open_kfid")
        if not open_kfid:
            # A proactive message has no hints, but its conversation names the KF.
            parsed = split_conversation(reply.conversation)
            open_kfid = parsed[0] if parsed else ""
        if not open_kfid:
            raise PermanentSendError(f"wecom_kf reply {reply.idempotency_key} names no open_kfid")
        return open_kfid

    def _payload(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return {"touser": reply.recipient, "open_kfid": self._open_kfid(reply), "msgtype": msgtype, msgtype: dict(body)}

    async def post(self, reply: OutboundMessage, msgtype: str, body: Mapping[str, Any]) -> None:
        await self.client.send_msg(self._payload(reply, msgtype, body))

    # -- hand-off -------------------------------------------------------------------
    async def handoff_changed(self, conversation: str, recipient: str, *, agent: str) -> None:
        """Mirror a Kefu hand-off in WeCom when the agent is a WeCom servicer.

        Agents who answer from Kefu's console reply through ``kf/send_msg``, which WeCom
        refuses while a human servicer holds the session, so the session stays with the
        "bot" for them. Only agents listed in ``servicers`` (Kefu name -> WeCom userid)
        take the WeCom session themselves, and it returns to the bot on hand-back.
        """
        ids = split_conversation(conversation)
        if ids is None:
            return
        open_kfid, external_userid = ids
        if agent:
            servicer = self.servicers.get(agent)
            if servicer:
                await self.transfer_to_human(open_kfid, external_userid, servicer)
        elif self.servicers:
            await self.transfer_to_bot(open_kfid, external_userid)

    async def session_state(self, open_kfid: str, external_userid: str) -> SessionState:
        """Who holds the customer's session now (bot, queue, a human servicer)."""
        return await self.client.service_state_get(open_kfid, external_userid)

    async def transfer_to_human(self, open_kfid: str, external_userid: str, servicer_userid: str = "") -> str:
        """Hand the session to a human: to ``servicer_userid`` (state 3) or the queue (2).

        Returns the ``msg_code`` WeCom gives for a hand-over message (send_msg_on_event).
        While a human holds the session, WeCom refuses the bot's ``kf/send_msg``.
        """
        state = ServiceState.HUMAN if servicer_userid else ServiceState.QUEUED
        return await self.client.service_state_trans(open_kfid, external_userid, state, servicer_userid)

    async def transfer_to_bot(self, open_kfid: str, external_userid: str) -> str:
        """Give the session back to the bot (state 1, 由智能助手接待)."""
        return await self.client.service_state_trans(open_kfid, external_userid, ServiceState.BOT)
