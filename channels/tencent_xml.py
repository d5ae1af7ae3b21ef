"""Tencent's message XML (WeChat service accounts and WeCom apps share it) -> InboundMessage.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
      https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
      https://developer.work.weixin.qq.com/document/path/90239 (消息格式)
      https://developer.work.weixin.qq.com/document/path/90240 (事件格式)
"""

from __future__ import annotations

from bot.messages import InboundMessage, MediaRef, MessageKind
from channels.errors import MalformedPayload

_KINDS = {
    "text": MessageKind.TEXT,
    "voice": MessageKind.VOICE,
    "image": MessageKind.IMAGE,
    "location": MessageKind.LOCATION,
    "link": MessageKind.LINK,
    "event": MessageKind.EVENT,
}


def _float(fields: dict[str, str], name: str) -> float:
    try:
        return float(fields[name])
    except (KeyError, ValueError) as exc:
        raise MalformedPayload(f"{name} missing or not a number") from exc


def to_message(fields: dict[str, str], account: str, raw: str, *, channel: str) -> InboundMessage:
    """Normalise one parsed message or event; unknown kinds become ``UNKNOWN``.

    Unknown kinds (video, file, future ones) are kept with their raw XML so they are
    stored and can be answered with a receipt, never a crash or a retry storm.
    """
    sender = fields.get("FromUserName", "")
    msg_type = fields.get("MsgType", "")
    create_time = fields.get("CreateTime", "")
    if not sender or not msg_type or not create_time.isdigit():
        raise MalformedPayload("FromUserName, MsgType or CreateTime missing")
    kind = _KINDS.get(msg_type, MessageKind.UNKNOWN)
    event = fields.get("Event", "").lower() if kind is MessageKind.EVENT else ""
    msg_id = fields.get("MsgId", "")
    # The platforms' dedup rule: MsgId for messages, sender + CreateTime for events
    # (retries repeat both). The event name keeps two events of one second apart
    # (subscribe then SCAN on WeChat, subscribe then enter_agent on WeCom).
    platform_id = msg_id if msg_id and kind is not MessageKind.EVENT else f"{sender}:{create_time}:{event or msg_type}"
    text = ""
    media: MediaRef | None = None
    location: tuple[float, float] | None = None
    link_url = ""
    event_key = ""
    if kind is MessageKind.TEXT:
        text = fields.get("Content", "")
    elif kind is MessageKind.VOICE:
        media = MediaRef(
            media_id=fields.get("MediaId", ""),
            format=fields.get("Format", "amr").lower(),
            recognition=fields.get("Recognition", ""),  # WeChat's own speech recognition, if enabled
        )
        if not media.media_id:
            raise MalformedPayload("voice message without MediaId")
    elif kind is MessageKind.IMAGE:
        media = MediaRef(media_id=fields.get("MediaId", ""), format="jpg", url=fields.get("PicUrl", ""))
    elif kind is MessageKind.LOCATION:
        location = (_float(fields, "Location_X"), _float(fields, "Location_Y"))
        text = fields.get("Label", "")
    elif kind is MessageKind.LINK:
        text = fields.get("Title", "")
        link_url = fields.get("Url", "")
    elif kind is MessageKind.EVENT:
        event_key = fields.get("EventKey", "")
        if event == "location":
            location = (_float(fields, "Latitude"), _float(fields, "Longitude"))
    return InboundMessage(
        channel=channel,
        account=account,
        sender=sender,
        conversation=f"{channel}:{account}:{sender}",
        kind=kind,
        platform_id=platform_id,
        timestamp=float(create_time),
        text=text,
        event=event,
        event_key=event_key,
        media=media,
        location=location,
        link_url=link_url,
        raw=raw,
    )
