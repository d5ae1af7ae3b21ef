"""The channel abstraction: what every messaging platform adapter provides.

Shaped after Rasa's ``InputChannel``/``OutputChannel``: a name, a constructor from its
own settings section, the webhook work it does, one required ``send_text`` and richer
sends that fall back to text. Verification and parsing are plain synchronous methods:
they are pure CPU work on the ack path, testable without a server, and keeping them
free of awaits keeps that path short.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.messages import InboundMessage, MediaRef, OutboundMessage
from bot.store import MessageStore
from bot.tokens import TokenCache


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What the composition root hands every channel: shared clients, nothing global."""

    http: aiohttp.ClientSession
    redis: Redis
    tokens: TokenCache
    # Base URL under which this gateway is reachable, for channels that build links.
    public_url: str = ""
    # Queue more inbound messages (deduplicated by key), for channels whose webhook only
    # announces that messages are waiting (WeCom KF) or that poll (IMAP).
    enqueue: Callable[[Sequence[InboundMessage]], Awaitable[int]] | None = None
    # The message store, for channels that keep files (mail attachments in GridFS via
    # ``store.db``) or quarantine input no message can be made of (``dead_letter``).
    store: MessageStore | None = None


ChannelLookup = Callable[[str, str], "Channel | None"]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """The parts of an HTTP request a channel looks at, decoupled from aiohttp."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    remote: str = ""


@dataclass(frozen=True, slots=True)
class Received:
    """What a verified webhook yields: messages to enqueue and the body to answer with."""

    messages: tuple[InboundMessage, ...]
    ack_body: str = "success"
    ack_content_type: str = "text/plain"


class FakePlatform(Protocol):
    """A fake of a platform's API on loopback (tests, benchmarks, the embedded demo)."""

    def app(self) -> web.Application: ...


class Channel(abc.ABC):
    """One configured account on one platform.

    The class also carries the channel's facts every other package derives its tables
    from: :attr:`name`, :attr:`display_name`, :attr:`recipient_field`, :attr:`compact`
    and :attr:`fake_api`.
    """

    name: ClassVar[str]
    #: How people call the channel, per language (``zh``, ``en``).
    display_name: ClassVar[Mapping[str, str]]
    #: The field naming a customer's address on this channel, as a CRM sends it
    #: (``openid`` on WeChat); the value is what arrives as ``InboundMessage.sender``.
    recipient_field: ClassVar[str]
    #: Whether notifications use the compact layout (read on a phone lock screen).
    compact: ClassVar[bool] = False
    #: The fake of the platform's API mounted under ``/_sim/<name>`` in simulator mode.
    fake_api: ClassVar[Callable[[], FakePlatform] | None] = None

    #: Fields an address may carry besides the recipient, which sends need.
    address_extras: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def recipient_problem(cls, recipient: str) -> str | None:
        """Why ``recipient`` cannot be an address on this channel, or ``None`` if it can."""
        return None
    # How long after the customer's last message the platform still accepts a free-form
    # message to them (WeChat's customer-service window: 48 h); None: no such limit.
    reply_window_s: ClassVar[float | None] = None

    @classmethod
    def address_of(cls, sender: str, conversation: str) -> dict[str, str]:
        """The address (recipient and extras) that reaches whoever sent a message."""
        return {cls.recipient_field: sender}

    @classmethod
    def conversation_for(cls, account: str, address: Mapping[str, str]) -> str:
        """The conversation a proactive message to ``address`` on ``account`` belongs to."""
        return f"{cls.name}:{account}:{address[cls.recipient_field]}"

    def __init__(self, account: str) -> None:
        self.account = account

    def reply_deadline(self, last_inbound_at: float, hints: Mapping[str, str]) -> float | None:
        """Until when (epoch seconds) a free-form reply can reach the customer; None: always.

        ``hints`` are the reply hints of the customer's last message. The console warns an
        agent before sending into a closed window.
        """
        return None if self.reply_window_s is None else last_inbound_at + self.reply_window_s

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        """Build the channel from its own account section of ``kefu.yml``."""

    @classmethod
    def route_paths(cls) -> Sequence[str]:
        """Paths this channel's webhooks live under; ``{account}`` picks the account."""
        return (f"/{cls.name}/{{account}}",)

    def verify_url(self, request: WebhookRequest) -> str:
        """Answer the platform's URL verification (a GET); raise ``WebhookRejected``."""
        from channels.errors import WebhookRejected

        raise WebhookRejected(f"{self.name} has no URL verification")

    @abc.abstractmethod
    def receive(self, request: WebhookRequest) -> Received:
        """Verify, decrypt and parse a webhook POST; raise ``WebhookRejected`` on bad input."""

    @abc.abstractmethod
    async def send_text(self, reply: OutboundMessage) -> None:
        """Deliver ``reply.text`` to ``reply.recipient``; raise ``PlatformError`` on failure."""

    async def send(self, reply: OutboundMessage) -> None:
        """Deliver a reply of any kind; channels override what they support natively."""
        await self.send_text(reply)

    async def fetch_media(self, media: MediaRef) -> bytes:
        """Download an attachment (a voice note, an image) the platform holds for us."""
        from channels.errors import PermanentSendError

        raise PermanentSendError(f"{self.name} cannot fetch media")

    async def expand(self, message: InboundMessage) -> Sequence[InboundMessage]:
        """The messages a queued inbound message stands for; runs in the worker.

        Most channels deliver messages directly and return ``(message,)``. A channel
        whose webhook only announces waiting messages (WeCom KF's ``kf_msg_or_event``)
        fetches them here, queues them through ``ChannelContext.enqueue`` (each is then
        deduplicated and handled on its own) and returns ``()``.
        """
        return (message,)

    async def handoff_changed(self, conversation: str, recipient: str, *, agent: str) -> None:
        """A person took the conversation over (``agent`` named) or gave it back (``""``).

        For platforms that keep their own record of who serves a session (WeCom customer
        service's ``service_state``). The default has nothing to tell.
        """

    async def run_background(self, stop: asyncio.Event) -> None:
        """Long-running intake that is not a webhook (IMAP IDLE, DingTalk stream mode).

        Runs in worker processes until ``stop`` is set. The default has nothing to do.
        """

    async def close(self) -> None:
        """Release what the channel opened (streams, connections)."""


def resolve_base_url(configured: Any, default: str, ctx: ChannelContext) -> str:
    """A platform API base URL; a path ("/_sim/wechat") is taken relative to this gateway."""
    url = str(configured or default).rstrip("/")
    if url.startswith("/"):
        return ctx.public_url.rstrip("/") + url
    return url
