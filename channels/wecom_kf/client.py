"""The WeCom KF (微信客服) API on top of WeCom's token handling and transport.

Docs: https://kf.weixin.qq.com/api/doc/path/94745 (读取消息 kf/sync_msg)
      https://kf.weixin.qq.com/api/doc/path/94744 (发送消息 kf/send_msg)
      https://kf.weixin.qq.com/api/doc/path/94669 (分配客服会话 service_state/get, trans)
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.errors import PermanentSendError, PlatformUnavailable
from channels.wecom.client import WeComClient

log = logging.getLogger(__name__)


class ServiceState(enum.IntEnum):
    """Who holds a customer's session (``service_state``)."""

    UNTREATED = 0  # 未处理: new, nobody took it yet
    BOT = 1  # 由智能助手接待: the API (this bot) answers
    QUEUED = 2  # 待接入池排队中: waiting for a human
    HUMAN = 3  # 由人工接待: a servicer (servicer_userid) answers
    ENDED = 4  # 已结束/未开始


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One ``kf/sync_msg`` answer."""

    items: tuple[Mapping[str, Any], ...]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True, slots=True)
class SessionState:
    state: ServiceState
    servicer_userid: str = ""


class WeComKfClient(WeComClient):
    """The KF secret's client: message sync, sends and session state."""

    async def sync_msg(
        self, *, cursor: str, token: str, open_kfid: str, limit: int = 1000, voice_format: int = 0
    ) -> SyncPage:
        """POST /cgi-bin/kf/sync_msg: the page of messages after ``cursor``.

        ``token`` is the one-time token of the callback that announced the messages; it
        lifts the strict rate limit of token-less calls for 10 minutes. A callback the
        worker reaches late carries an expired token, so a refused call is retried
        once without it (the errcode for an expired token is not documented reliably).
        """
        body: dict[str, Any] = {"cursor": cursor, "limit": limit, "voice_format": voice_format, "open_kfid": open_kfid}
        if token:
            body["token"] = token
        try:
            result = await self.call("POST", "/cgi-bin/kf/sync_msg", json_body=body)
        except PermanentSendError as exc:
            if not token:
                raise
            log.warning("wecom_kf %s: sync_msg refused with the callback token (%s); retrying without", open_kfid, exc)
            body.pop("token")
            result = await self.call("POST", "/cgi-bin/kf/sync_msg", json_body=body)
        items = result.get("msg_list") or []
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise PlatformUnavailable(f"sync_msg: msg_list is not a list of objects: {result!r:.200}")
        return SyncPage(
            items=tuple(items),
            next_cursor=str(result.get("next_cursor") or ""),
            has_more=bool(result.get("has_more")),
        )

    async def send_msg(self, payload: Mapping[str, Any]) -> str:
        """POST /cgi-bin/kf/send_msg (touser, open_kfid, msgtype, ...); returns the msgid."""
        result = await self.call("POST", "/cgi-bin/kf/send_msg", json_body=payload)
        return str(result.get("msgid", ""))

    async def send_msg_on_event(self, code: str, payload: Mapping[str, Any]) -> str:
        """POST /cgi-bin/kf/send_msg_on_event: a welcome with an event's welcome_code/msg_code."""
        result = await self.call("POST", "/cgi-bin/kf/send_msg_on_event", json_body={"code": code, **payload})
        return str(result.get("msgid", ""))

    async def service_state_get(self, open_kfid: str, external_userid: str) -> SessionState:
        """POST /cgi-bin/kf/service_state/get."""
        result = await self.call(
            "POST", "/cgi-bin/kf/service_state/get", json_body={"open_kfid": open_kfid, "external_userid": external_userid}
        )
        try:
            state = ServiceState(int(result.get("service_state", 0)))
        except ValueError as exc:
            raise PlatformUnavailable(f"service_state/get: unknown state {result.get('service_state')!r}") from exc
        return SessionState(state, str(result.get("servicer_userid", "") or ""))

    async def service_state_trans(
        self, open_kfid: str, external_userid: str, state: ServiceState, servicer_userid: str = ""
    ) -> str:
        """POST /cgi-bin/kf/service_state/trans; returns the msg_code for send_msg_on_event."""
        body: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external_userid, "service_state": int(state)}
        if servicer_userid:
            body["servicer_userid"] = servicer_userid
        result = await self.call("POST", "/cgi-bin/kf/service_state/trans", json_body=body)
        return str(result.get("msg_code", "") or "")
