"""What the composition root hands the console: its settings section and the gateway's parts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from admin.keys import ApiKeyStore
from admin.ratelimit import Limits
from admin.roles import Role
from bot.conversation.handoff import Handoff
from bot.conversation.state import StateStore
from bot.customer_card import ConversationActions, CustomerCard
from bot.errors import ConfigError
from bot.nlu.switch import ModelSwitch
from bot.outbox import Outbox
from bot.queue import InboundQueue
from bot.store import MessageStore
from bot.voice_archive import VoiceArchive
from channels.base import Channel
from preferences.services import PreferenceServices
from skills.services import SkillServices
from webui.settings import language_setting, secure_cookies_setting, time_zone_setting

if TYPE_CHECKING:
    from knowledge.service import Knowledge

ChannelLookup = Callable[[str, str], Channel | None]
AudioConverter = Callable[[bytes, str], bytes]


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The ``console`` section of kefu.yml."""

    session_ttl_s: int = 12 * 3600
    secure_cookies: bool | None = None  # None: Secure whenever the request came over https
    signin: Limits = field(default_factory=Limits)
    language: str = "zh"  # for the sign-in page; users choose their own afterwards
    time_zone: str = "Asia/Shanghai"
    public_url: str = ""  # base of the webhook URLs shown on the channels page
    # (name, role, password) created at start when missing: the embedded demo's logins.
    demo_users: tuple[tuple[str, Role, str], ...] = ()
    # The live-update subscription outlasts the process's last open page by this long
    # (a page reloading does not resubscribe); a process without pages reads no events.
    live_idle_s: float = 60.0

    @classmethod
    def from_section(cls, section: Mapping[str, Any], *, public_url: str) -> ConsoleSettings:
        known = {"session_ttl_s", "secure_cookies", "signin_per_user", "signin_per_address", "signin_window_s",
                 "language", "time_zone", "public_url", "demo_users", "live_idle_s"}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"console: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
        try:
            d = cls()
            limits = Limits(
                per_user=int(section.get("signin_per_user", d.signin.per_user)),
                per_address=int(section.get("signin_per_address", d.signin.per_address)),
                window_s=int(section.get("signin_window_s", d.signin.window_s)),
            )
            return cls(
                session_ttl_s=int(section.get("session_ttl_s", d.session_ttl_s)),
                secure_cookies=secure_cookies_setting(section),
                signin=limits,
                language=language_setting(section, d.language),
                time_zone=time_zone_setting(section, d.time_zone),
                public_url=str(section.get("public_url") or public_url).rstrip("/"),
                live_idle_s=float(section.get("live_idle_s", d.live_idle_s)),
                demo_users=tuple(
                    (str(u["name"]), Role(u["role"]), str(u["password"])) for u in section.get("demo_users", ())
                ),
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ConfigError(f"console: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    """The gateway's parts the console works with, built by the composition root."""

    redis: Redis
    db: AsyncDatabase[dict[str, Any]]
    store: MessageStore
    states: StateStore
    handoff: Handoff
    outbox: Outbox
    channels: ChannelLookup
    # Configured accounts per channel name, as in kefu.yml (shown with secrets hidden).
    channel_settings: Mapping[str, tuple[Mapping[str, Any], ...]]
    api_scopes: tuple[str, ...] = ()
    # Where a retried inbound dead letter goes again; None: inbound ones can only be discarded.
    inbound: InboundQueue | None = None
    api_keys: ApiKeyStore | None = None
    # What the other packages know about a customer (tickets, contracts, preferences).
    customer_card: CustomerCard | None = None
    # What the skills did in a conversation (tickets, renewal quotes, remedies, cases).
    conversation_actions: ConversationActions | None = None
    # Voice-note bytes and their format -> WAV a browser plays; None: served as stored.
    audio_to_browser: AudioConverter | None = None
    # Voice notes' audio as it arrived; None: notes are fetched from the platform when played.
    voice_archive: VoiceArchive | None = None
    # The marketers' workspace: preferences, templates, digests and the skills' boards.
    preferences: PreferenceServices | None = None
    skills: SkillServices | None = None
    # The trainer's pages: missed turns, labels and their review, corrected transcripts.
    knowledge: Knowledge | None = None
    # The held-out gate's last figures and the switch a trainer confirms; None: no NLU here.
    model_switch: ModelSwitch | None = None
