"""The one inbound and the one outbound message type every layer speaks.

Channels turn platform payloads into :class:`InboundMessage`; skills answer with
:class:`OutboundMessage`. Both are frozen and slotted so that a message cannot be
changed behind the back of the layer that produced it, and both serialise to a
compact JSON form for the Redis streams.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


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
