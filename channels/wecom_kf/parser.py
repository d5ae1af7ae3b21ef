"""WeCom KF callbacks and ``kf/sync_msg`` items -> :class:`bot.messages.InboundMessage`.

Docs: https://developer.work.weixin.qq.com/document/path/94670 (接收消息和事件)
      https://kf.weixin.qq.com/api/doc/path/94745 (读取消息: msg_list, origin, msgtype)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.messages import InboundMessage, MediaRef, MessageKind
from channels.errors import MalformedPayload

CHANNEL = "wecom_kf"
SYNC_EVENT = "kf_msg_or_event"

# sync_msg "origin": 3 a WeChat customer wrote it, 4 a system event, 5 a human servicer
# wrote it in the WeCom client. Only 3 and 4 are for the bot; answering 5 would make the
# bot talk to its own colleagues.
ORIGIN_CUSTOMER = 3
ORIGIN_EVENT = 4

VOICE_FORMATS = {0: "amr", 1: "silk"}  # the sync_msg voice_format parameter

_KINDS = {
    "text": MessageKind.TEXT,
    "voice": MessageKind.VOICE,
    "image": MessageKind.IMAGE,
    "location": MessageKind.LOCATION,
    "link": MessageKind.LINK,
    "file": MessageKind.FILE,
    "event": MessageKind.EVENT,
}


def conversation_id(account: str, open_kfid: str, external_userid: str) -> str:
    """One conversation per (KF account, customer): a customer may talk to two KFs."""
    return f"{CHANNEL}:{account}:{open_kfid}:{external_userid}"


def split_conversation(conversation: str) -> tuple[str, str] | None:
    """(open_kfid, external_userid) of a conversation id made by :func:`conversation_id`."""
    parts = conversation.split(":", 3)
    if len(parts) != 4 or parts[0] != CHANNEL:
        return None
    return parts[2], parts[3]


def callback_to_message(fields: dict[str, str], account: str, raw: str) -> InboundMessage:
    """The decrypted callback itself, queued so that the worker syncs what it announces.

    Its ``platform_id`` is the callback's Token with its CreateTime: WeCom's retries of
    one callback repeat both and are dropped by the webhook's dedup like any repeated
    message, while a new callback (a later CreateTime, even with a Token seen before)
    leads to a sync. An extra sync costs one API call; a missed one leaves a customer
    unanswered until some later message arrives.
    """
    create_time = fields.get("CreateTime", "")
    if fields.get("MsgType") != "event" or not create_time.isdigit():
        raise MalformedPayload("WeCom KF callback without MsgType event or CreateTime")
    event = fields.get("Event", "").lower()
    open_kfid = fields.get("OpenKfId", "")
    token = fields.get("Token", "")
    if event == SYNC_EVENT and not (open_kfid and token):
        raise MalformedPayload("kf_msg_or_event without OpenKfId or Token")
    sender = open_kfid or fields.get("ToUserName", "") or "wecom_kf"
    platform_id = f"{event}:{token}:{create_time}" if token else f"{event}:{sender}:{create_time}"
    return InboundMessage(
        channel=CHANNEL,
        account=account,
        sender=sender,
        # All callbacks of one KF account share a conversation: the worker then runs
        # them in order rather than side by side.
        conversation=f"{CHANNEL}:{account}:{sender}:sync",
        kind=MessageKind.EVENT,
        platform_id=platform_id,
        timestamp=float(create_time),
        event=event,
        extra=(("open_kfid", open_kfid), ("sync_token", token)),
        raw=raw,
    )


def _section(item: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = item.get(name)
    return value if isinstance(value, Mapping) else {}


def _float(section: Mapping[str, Any], name: str) -> float:
    try:
        return float(section[name])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPayload(f"{name} missing or not a number") from exc


def item_to_message(item: Mapping[str, Any], account: str, *, voice_format: int = 0) -> InboundMessage | None:
    """One ``msg_list`` item, or None if it is not for the bot (a servicer's message).

    Unknown kinds (video, miniprogram, business_card, ...) become ``UNKNOWN`` with the
    item kept as raw JSON, so they are stored and never stop the sync.
    """
    origin = item.get("origin")
    msgtype = str(item.get("msgtype", ""))
    if origin == ORIGIN_EVENT and msgtype != "event":
        return None
    if origin not in (ORIGIN_CUSTOMER, ORIGIN_EVENT):
        return None
    msgid = str(item.get("msgid", ""))
    open_kfid = str(item.get("open_kfid", ""))
    kind = _KINDS.get(msgtype, MessageKind.UNKNOWN)
    body = _section(item, msgtype)
    # Events name their customer inside the event body, messages at the top level.
    external_userid = str(item.get("external_userid") or body.get("external_userid") or "")
    open_kfid = open_kfid or str(body.get("open_kfid", ""))
    if not msgid or not open_kfid or not external_userid:
        if kind is MessageKind.EVENT:
            return None  # account-level events (servicer status) concern no customer
        raise MalformedPayload("sync_msg item without msgid, open_kfid or external_userid")
    text = ""
    media: MediaRef | None = None
    location: tuple[float, float] | None = None
    link_url = ""
    event = ""
    event_key = ""
    extra: list[tuple[str, str]] = [("open_kfid", open_kfid)]
    if kind is MessageKind.TEXT:
        text = str(body.get("content", ""))
        if body.get("menu_id"):
            extra.append(("menu_id", str(body["menu_id"])))
    elif kind is MessageKind.VOICE:
        media = MediaRef(media_id=str(body.get("media_id", "")), format=VOICE_FORMATS.get(voice_format, "amr"))
        if not media.media_id:
            raise MalformedPayload("voice message without media_id")
    elif kind is MessageKind.IMAGE:
        media = MediaRef(media_id=str(body.get("media_id", "")), format="jpg")
    elif kind is MessageKind.FILE:
        media = MediaRef(media_id=str(body.get("media_id", "")))
    elif kind is MessageKind.LOCATION:
        location = (_float(body, "latitude"), _float(body, "longitude"))
        text = str(body.get("name") or body.get("address") or "")
    elif kind is MessageKind.LINK:
        text = str(body.get("title", ""))
        link_url = str(body.get("url", ""))
    elif kind is MessageKind.EVENT:
        event = str(body.get("event_type", "")).lower()
        event_key = str(body.get("scene_param") or body.get("scene") or "")
        # enter_session's welcome_code lets a welcome go out via send_msg_on_event
        # (within 20 s); keep it for the reply.
        for name in ("welcome_code", "scene", "msg_code"):
            if body.get(name):
                extra.append((name, str(body[name])))
    try:
        timestamp = float(item.get("send_time", 0))
    except (TypeError, ValueError) as exc:
        raise MalformedPayload("send_time is not a number") from exc
    if item.get("servicer_userid"):
        extra.append(("servicer_userid", str(item["servicer_userid"])))
    return InboundMessage(
        channel=CHANNEL,
        account=account,
        sender=external_userid,
        conversation=conversation_id(account, open_kfid, external_userid),
        kind=kind,
        platform_id=msgid,
        timestamp=timestamp,
        text=text,
        event=event,
        event_key=event_key,
        media=media,
        location=location,
        link_url=link_url,
        extra=tuple(extra),
        raw=json.dumps(item, ensure_ascii=False, separators=(",", ":")),
    )
