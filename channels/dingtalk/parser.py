"""DingTalk robot message JSON -> :class:`bot.messages.InboundMessage`.

The HTTP callback body and the stream-mode callback frame's ``data`` carry the same
JSON, so both intakes go through :func:`to_message`.

Docs: https://open.dingtalk.com/document/orgapp/receive-message
      https://open.dingtalk.com/document/orgapp/the-robot-receives-a-message-of-the-type-of-file
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from bot.messages import InboundMessage, MediaRef, MessageKind, safe_json
from channels.errors import BadEncoding, MalformedPayload, TooDeep

CHANNEL = "dingtalk"

# Reply hints copied into ``extra``; the channel's send path reads them back.
HINTS = (
    "sessionWebhook",
    "sessionWebhookExpiredTime",
    "conversationId",
    "conversationType",
    "senderStaffId",
    "senderId",
    "robotCode",
)

# A \uD800-\uDFFF escape: JSON's only way to carry a lone surrogate (raw UTF-8 cannot).
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")

SINGLE_CHAT = "1"
GROUP_CHAT = "2"


def loads(body: bytes) -> dict[str, Any]:
    """Parse a callback body; anything but a JSON object is ``MalformedPayload``."""
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise TooDeep("JSON nests too deep") from exc
    except UnicodeDecodeError as exc:
        raise BadEncoding("body is not UTF-8") from exc
    except ValueError as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object")
    if _ESCAPED_SURROGATE.search(body):
        data = dict(safe_json(data))
    return data


def _content(data: Mapping[str, Any]) -> Mapping[str, Any]:
    content = data.get("content")
    if isinstance(content, str):
        # Some deliveries (stream mode, older robots) carry content as a JSON string.
        try:
            content = json.loads(content)
        except ValueError:
            return {}
    return content if isinstance(content, Mapping) else {}


def _rich_text(content: Mapping[str, Any]) -> tuple[str, MediaRef | None]:
    parts: list[str] = []
    media: MediaRef | None = None
    items = content.get("richText")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        if isinstance(item.get("text"), str):
            parts.append(item["text"])
        code = item.get("downloadCode") or item.get("pictureDownloadCode")
        if media is None and isinstance(code, str) and code:
            media = MediaRef(media_id=code, format="jpg")
    return "".join(parts).strip(), media


def to_message(data: Mapping[str, Any], account: str, raw: str) -> InboundMessage:
    """Normalise one robot message; unknown ``msgtype`` values become ``UNKNOWN``."""
    msg_id = data.get("msgId")
    conversation_id = data.get("conversationId")
    sender = data.get("senderStaffId") or data.get("senderId")
    if not isinstance(msg_id, str) or not msg_id or not isinstance(conversation_id, str) or not conversation_id:
        raise MalformedPayload("msgId or conversationId missing")
    if not isinstance(sender, str) or not sender:
        raise MalformedPayload("senderStaffId and senderId missing")
    msgtype = data.get("msgtype")
    content = _content(data)
    kind = MessageKind.UNKNOWN
    text = ""
    media: MediaRef | None = None
    if msgtype == "text":
        kind = MessageKind.TEXT
        body = data.get("text")
        text = str(body.get("content", "")).strip() if isinstance(body, Mapping) else ""
    elif msgtype == "richText":
        text, media = _rich_text(content)
        kind = MessageKind.TEXT if text else MessageKind.IMAGE if media else MessageKind.UNKNOWN
    elif msgtype == "picture":
        code = content.get("downloadCode") or content.get("pictureDownloadCode") or ""
        kind = MessageKind.IMAGE
        media = MediaRef(media_id=str(code), format="jpg")
    elif msgtype == "audio":
        code = content.get("downloadCode")
        if not isinstance(code, str) or not code:
            raise MalformedPayload("audio message without downloadCode")
        kind = MessageKind.VOICE
        # DingTalk does not name the codec; the speech layer probes the bytes.
        media = MediaRef(media_id=code, format=str(content.get("audioType", "")), recognition=str(content.get("recognition", "")))
    elif msgtype in ("file", "video"):
        kind = MessageKind.FILE
        name = str(content.get("fileName", ""))
        fmt = name.rsplit(".", 1)[-1].lower() if "." in name else str(content.get("videoType", ""))
        media = MediaRef(media_id=str(content.get("downloadCode", "")), format=fmt)
        text = ""
    created = data.get("createAt")
    timestamp = float(created) / 1000 if isinstance(created, (int, float)) and created > 0 else time.time()
    extra = tuple((name, str(data[name])) for name in HINTS if data.get(name) not in (None, ""))
    return InboundMessage(
        channel=CHANNEL,
        account=account,
        sender=sender,
        conversation=f"{CHANNEL}:{account}:{conversation_id}",
        kind=kind,
        platform_id=msg_id,
        timestamp=timestamp,
        text=text,
        media=media,
        extra=extra,
        raw=raw,
    )
