"""The live parts of a running gateway, held in one typed aiohttp app key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis

from bot.config import Settings
from bot.conversation.events import ConversationEvents
from bot.conversation.handoff import Handoff
from bot.conversation.ordering import ConversationGate
from bot.conversation.state import StateStore
from bot.nlu.client import NluClient
from bot.nlu.readiness import NluReadiness
from bot.nlu.switch import ModelSwitch
from bot.voice import VoiceStep
from bot.routing import SkillRouter
from bot.health import HealthMonitor
from bot.metrics import Metrics
from bot.outbox import Outbox
from bot.queue import InboundQueue
from bot.store import MessageStore
from bot.templates import Templates
from channels.base import Channel


@dataclass(frozen=True)
class Runtime:
    """The gateway's core parts, built once by the composition root; what the webhook,
    the workers and the conversation API use."""

    settings: Settings
    redis: Redis
    store: MessageStore
    queue: InboundQueue
    outbox: Outbox
    templates: Templates
    router: SkillRouter
    health: HealthMonitor
    states: StateStore
    gate: ConversationGate
    handoff: Handoff
    channels: dict[tuple[str, str], Channel]
    metrics: Metrics
    nlu: NluClient | None = None
    nlu_readiness: NluReadiness | None = None
    # Switches in the model the held-out gate passed, on a trainer's word (the console's model page).
    nlu_switch: ModelSwitch | None = None
    voice: VoiceStep | None = None
    events: ConversationEvents | None = None

    def channel(self, name: str, account: str) -> Channel | None:
        return self.channels.get((name, account))


RUNTIME = web.AppKey("runtime", Runtime)
