"""The one inbound and the one outbound message type every layer speaks.

Channels turn platform payloads into :class:`InboundMessage`; skills answer with
:class:`OutboundMessage`. Both are frozen and slotted so that a message cannot be
changed behind the back of the layer that produced it, and both serialise to a
compact JSON form for the Redis streams.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any

# A lone UTF-16 surrogate: JSON can carry one as an escape and Python decodes it, but
# no UTF-8 encoder (Redis, BSON, a log file) accepts it. Email headers hold them too
# (the email package keeps undecodable bytes as surrogate escapes).
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes anywhere."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def safe_json(value: Any) -> Any:
    """A parsed JSON value with :func:`safe_text` applied to every key and string."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [safe_json(v) for v in value]
    if isinstance(value, dict):
        return {safe_text(k): safe_json(v) for k, v in value.items()}
    return value


class MessageKind(str, enum.Enum):
    TEXT = "text"
    VOICE = "voice"
    IMAGE = "image"
    LOCATION = "location"
    LINK = "link"
    FILE = "file"
    EVENT = "event"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MediaRef:
    """Where a channel can fetch an attachment from, without fetching it yet."""

    media_id: str
    format: str = ""  # e.g. "amr", "silk", "jpg"; what the platform says
    url: str = ""
    recognition: str = ""  # the platform's own speech recognition, if it sent one


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer's message or event, the same shape for every channel.

    ``key`` is the message's identity inside Kefu: stable across platform retries, so
    that storage and reply idempotency can hang on it.
    """

    channel: str
    account: str
    sender: str
    conversation: str
    kind: MessageKind
    platform_id: str
    timestamp: float
    text: str = ""
    event: str = ""  # for kind == EVENT: subscribe, unsubscribe, scan, click, view, ...
    event_key: str = ""
    media: MediaRef | None = None
    location: tuple[float, float] | None = None  # (latitude, longitude)
    link_url: str = ""
    # Channel hints a reply needs (DingTalk sessionWebhook, email Message-ID/Subject);
    # copied onto the OutboundMessage that answers this one.
    extra: tuple[tuple[str, str], ...] = ()
    raw: str = field(default="", repr=False, compare=False)  # kept aside, never parsed again

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.account}:{self.platform_id}"

    def to_json(self) -> str:
        # Hand-built rather than dataclasses.asdict: this runs on the webhook ack path
        # and asdict's recursive deep copy costs several times more.
        media = self.media
        data = {
            "channel": self.channel,
            "account": self.account,
            "sender": self.sender,
            "conversation": self.conversation,
            "kind": self.kind.value,
            "platform_id": self.platform_id,
            "timestamp": self.timestamp,
            "text": self.text,
            "event": self.event,
            "event_key": self.event_key,
            "media": None
            if media is None
            else {"media_id": media.media_id, "format": media.format, "url": media.url, "recognition": media.recognition},
            "location": self.location,
            "link_url": self.link_url,
            "extra": self.extra,
            "raw": self.raw,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str | bytes) -> InboundMessage:
        data: dict[str, Any] = json.loads(payload)
        media = data.pop("media")
        location = data.pop("location")
        extra = data.pop("extra", ())
        return cls(
            **{**data, "kind": MessageKind(data["kind"])},
            media=MediaRef(**media) if media else None,
            location=(location[0], location[1]) if location else None,
            extra=tuple((str(k), str(v)) for k, v in extra),
        )

    def hint(self, name: str, default: str = "") -> str:
        return dict(self.extra).get(name, default)

    def made_safe(self) -> InboundMessage:
        """This message with every text field passed through :func:`safe_text`."""
        media = self.media
        return dataclasses.replace(
            self,
            sender=safe_text(self.sender),
            conversation=safe_text(self.conversation),
            platform_id=safe_text(self.platform_id),
            text=safe_text(self.text),
            event=safe_text(self.event),
            event_key=safe_text(self.event_key),
            link_url=safe_text(self.link_url),
            media=None if media is None else MediaRef(*(safe_text(v) for v in (media.media_id, media.format, media.url, media.recognition))),
            extra=tuple((safe_text(k), safe_text(v)) for k, v in self.extra),
            raw=safe_text(self.raw),
        )


class ReplyKind(str, enum.Enum):
    TEXT = "text"
    IMAGE = "image"
    NEWS = "news"


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    picurl: str = ""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply or a proactive message on its way to one recipient on one channel.

    ``idempotency_key`` names the send: the outbox sends each key at most once, so a
    retried inbound message or a reclaimed outbox entry never reaches the customer twice.
    """

    channel: str
    account: str
    recipient: str
    conversation: str
    idempotency_key: str
    kind: ReplyKind = ReplyKind.TEXT
    text: str = ""
    media_id: str = ""  # for IMAGE: a media id already uploaded to the platform
    image_path: str = ""  # for IMAGE: a local file the channel uploads first
    articles: tuple[Article, ...] = ()
    in_reply_to: str = ""  # InboundMessage.key, when this answers one
    topic: str = ""  # for proactive messages: repair, renewal, review, account, marketing
    extra: tuple[tuple[str, str], ...] = ()  # channel-specific hints, e.g. DingTalk sessionWebhook

    def to_json(self) -> str:
        # Hand-built like InboundMessage.to_json: a digest build serialises 100,000 of
        # these, and asdict's recursive deep copy would dominate the outbox's share.
        data = {
            "channel": self.channel,
            "account": self.account,
            "recipient": self.recipient,
            "conversation": self.conversation,
            "idempotency_key": self.idempotency_key,
            "kind": self.kind.value,
            "text": self.text,
            "media_id": self.media_id,
            "image_path": self.image_path,
            "articles": [{"title": a.title, "description": a.description, "url": a.url, "picurl": a.picurl} for a in self.articles],
            "in_reply_to": self.in_reply_to,
            "topic": self.topic,
            "extra": [list(pair) for pair in self.extra],
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str | bytes) -> OutboundMessage:
        data: dict[str, Any] = json.loads(payload)
        return cls(
            **{
                **data,
                "kind": ReplyKind(data["kind"]),
                "articles": tuple(Article(**a) for a in data["articles"]),
                "extra": tuple((k, v) for k, v in data["extra"]),
            }
        )

    def hint(self, name: str, default: str = "") -> str:
        return dict(self.extra).get(name, default)

    def made_safe(self) -> OutboundMessage:
        """This reply with every text field passed through :func:`safe_text`."""
        return dataclasses.replace(
            self,
            recipient=safe_text(self.recipient),
            conversation=safe_text(self.conversation),
            idempotency_key=safe_text(self.idempotency_key),
            text=safe_text(self.text),
            articles=tuple(Article(*(safe_text(v) for v in (a.title, a.description, a.url, a.picurl))) for a in self.articles),
            extra=tuple((safe_text(k), safe_text(v)) for k, v in self.extra),
        )
