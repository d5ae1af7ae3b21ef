"""What happened to a conversation, published through Redis for every web process.

The worker publishes after each turn (a customer's message stored, the bot's replies
queued, maybe a move into the human queue), the hand-off after each claim, transfer,
agent reply, hand-back and close. Consoles in any number of web processes subscribe and
update the open pages. An event names the conversation and the message records; it
never carries what the customer wrote, so Redis traffic holds no customer content.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

CHANNEL = "kefu:conversation:events"


@dataclass(frozen=True, slots=True)
class ConversationEvent:
    kind: str  # message | queued | claimed | transferred | handed_back | closed
    conversation: str
    owner: str = ""  # the conversation's owner after the event (bot, queue, agent:<name>)
    messages: tuple[str, ...] = ()  # MessageStore record ids added by this event
    agent: str = ""
    at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "conversation": self.conversation, "owner": self.owner,
             "messages": list(self.messages), "agent": self.agent, "at": self.at},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConversationEvent:
        data = json.loads(raw)
        return cls(
            kind=str(data["kind"]), conversation=str(data["conversation"]), owner=str(data.get("owner", "")),
            messages=tuple(str(m) for m in data.get("messages", ())), agent=str(data.get("agent", "")),
            at=float(data.get("at", 0.0)),
        )


class ConversationEvents:
    """Publishes events on one Redis pub/sub channel (fire and forget: a page that was
    not connected reloads its state from the stores when it connects)."""

    def __init__(self, redis: Redis, channel: str = CHANNEL) -> None:
        self.redis = redis
        self.channel = channel

    async def publish(self, event: ConversationEvent) -> None:
        await self.redis.publish(self.channel, event.to_json())
