"""WeChat service-account message XML -> :class:`bot.messages.InboundMessage`.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
and .../Receiving_event_pushes.html
"""

from __future__ import annotations

from bot.messages import InboundMessage, MediaRef, MessageKind
from channels.errors import MalformedPayload

CHANNEL = "wechat"

# Events are normalised to lower case: WeChat sends "subscribe" but "SCAN", "CLICK", "VIEW".
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


def to_message(fields: dict[str, str], account: str, raw: str) -> InboundMessage:
    """Normalise one parsed WeChat message; unknown kinds become ``UNKNOWN``, not errors."""
    sender = fields.get("FromUserName", "")
    msg_type = fields.get("MsgType", "")
    create_time = fields.get("CreateTime", "")
    if not sender or not msg_type or not create_time.isdigit():
        raise MalformedPayload("FromUserName, MsgType or CreateTime missing")
    kind = _KINDS.get(msg_type, MessageKind.UNKNOWN)
    # WeChat's dedup rule: MsgId for messages, FromUserName + CreateTime for events.
    msg_id = fields.get("MsgId", "")
    if kind is MessageKind.EVENT or not msg_id:
        platform_id = f"{sender}:{create_time}"
    else:
        platform_id = msg_id
    text = ""
    media: MediaRef | None = None
    location: tuple[float, float] | None = None
    link_url = ""
    event = ""
    event_key = ""
    if kind is MessageKind.TEXT:
        text = fields.get("Content", "")
    elif kind is MessageKind.VOICE:
        media = MediaRef(
            media_id=fields.get("MediaId", ""),
            format=fields.get("Format", "amr").lower(),
            recognition=fields.get("Recognition", ""),
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
        event = fields.get("Event", "").lower()
        event_key = fields.get("EventKey", "")
        if event == "location":
            location = (_float(fields, "Latitude"), _float(fields, "Longitude"))
    return InboundMessage(
        channel=CHANNEL,
        account=account,
        sender=sender,
        conversation=f"{CHANNEL}:{account}:{sender}",
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
