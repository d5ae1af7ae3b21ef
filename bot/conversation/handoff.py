"""The hand-off between the bot and human agents, as an explicit state machine.

    bot ──(request_human | repeated fallback | flagged complaint)──► queue
    queue ──(agent claims)──► agent:<name> ──(agent hands back)──► bot

While the conversation is in the queue or with an agent, the bot stays silent and only
stores the customer's messages; the agent replies through the same outbox. Every
transition is recorded in the ``handoffs`` collection.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.conversation.ordering import ConversationGate
from bot.conversation.state import AGENT_PREFIX, BOT, QUEUE, ConversationState, StateStore
from bot.errors import KefuError
from bot.messages import OutboundMessage
from bot.outbox import Outbox
from bot.store import MessageStore
from bot.templates import Templates
from channels.base import Channel

log = logging.getLogger(__name__)

WAITING = "kefu:handoff:waiting"


class HandoffError(KefuError):
    """A hand-off action that does not fit the conversation's current owner."""

    code = "handoff"
    status = 409


class UnknownConversation(HandoffError):
    code = "unknown_conversation"
    status = 404


class Handoff:
    def __init__(
        self,
        redis: Redis,
        db: AsyncDatabase[dict[str, Any]],
        states: StateStore,
        gate: ConversationGate,
        outbox: Outbox,
        store: MessageStore,
        templates: Templates,
        channels: Callable[[str, str], Channel | None],
    ) -> None:
        self.redis = redis
        self.events = db["handoffs"]
        self.states = states
        self.gate = gate
        self.outbox = outbox
        self.store = store
        self.templates = templates
        self.channels = channels

    async def ensure_indexes(self) -> None:
        await self.events.create_indexes(
            [IndexModel([("conversation", ASCENDING), ("at", ASCENDING)]), IndexModel([("event", ASCENDING), ("at", ASCENDING)])]
        )

    async def to_queue(self, state: ConversationState, reason: str) -> None:
        """Put a conversation in the human queue (called by skills, inside the turn)."""
        if not state.bot_active:
            return
        state.owner = QUEUE
        state.handoff_reason = reason
        state.form = None
        state.active_skill = ""
        await self.redis.zadd(WAITING, {state.conversation: time.time()}, nx=True)
        await self._record(state.conversation, "queued", reason=reason)
        log.info("%s queued for a human (%s)", state.conversation, reason)

    async def queued_between(self, start: float, end: float) -> list[tuple[str, str]]:
        """(conversation, reason) of every hand-off to the queue in ``[start, end)``."""
        cursor = self.events.find({"event": "queued", "at": {"$gte": start, "$lt": end}}, {"conversation": 1, "reason": 1})
        return [(str(d["conversation"]), str(d.get("reason", ""))) async for d in cursor]

    async def waiting(self) -> list[dict[str, Any]]:
        """Conversations waiting for an agent, longest-waiting first."""
        items: Any = await self.redis.zrange(WAITING, 0, -1, withscores=True)
        out: list[dict[str, Any]] = []
        for member, since in items:
            conversation = member.decode() if isinstance(member, bytes) else str(member)
            state = await self.states.get(conversation)
            out.append(
                {
                    "conversation": conversation,
                    "waiting_since": since,
                    "reason": state.handoff_reason if state else "",
                    "customer": state.customer if state else "",
                    "channel": state.channel if state else "",
                    "language": state.language if state else "",
                }
            )
        return out

    async def claim(self, conversation: str, agent: str) -> ConversationState:
        async with self.gate.locked(conversation):
            state = await self._state(conversation)
            if state.owner == AGENT_PREFIX + agent:
                return state
            if state.agent:
                raise HandoffError(f"{conversation} is already with agent {state.agent}")
            state.owner = AGENT_PREFIX + agent
            state.form = None
            await self.states.save(state)
            await self.redis.zrem(WAITING, conversation)
            await self._record(conversation, "claimed", agent=agent)
        await self._tell_platform(state, agent)
        await self._notify(state, "agent_joined", agent=agent)
        return state

    async def agent_reply(self, conversation: str, agent: str, text: str) -> str:
        if not text.strip():
            raise HandoffError("an agent reply needs text")
        state = await self._state(conversation)
        if state.owner != AGENT_PREFIX + agent:
            raise HandoffError(f"{conversation} is not with agent {agent}; claim it first")
        key = f"agent:{conversation}:{uuid.uuid4().hex}"
        await self._send(state, text, key)
        return key

    async def hand_back(self, conversation: str, agent: str) -> ConversationState:
        async with self.gate.locked(conversation):
            state = await self._state(conversation)
            if state.owner != AGENT_PREFIX + agent:
                raise HandoffError(f"{conversation} is not with agent {agent}")
            state.owner = BOT
            state.fallback_count = 0
            state.small_talk_count = 0
            state.handoff_reason = ""
            await self.states.save(state)
            await self._record(conversation, "handed_back", agent=agent)
        await self._tell_platform(state, "")
        await self._notify(state, "handed_back")
        return state

    async def _tell_platform(self, state: ConversationState, agent: str) -> None:
        channel = self.channels(state.channel, state.account)
        if channel is None:
            return
        try:
            await channel.handoff_changed(state.conversation, state.sender, agent=agent)
        except Exception:
            # Kefu's own record is authoritative; a platform that missed it is logged.
            log.exception("%s: could not tell %s about the hand-off", state.conversation, state.channel)

    async def _state(self, conversation: str) -> ConversationState:
        state = await self.states.get(conversation)
        if state is None:
            raise UnknownConversation(f"no conversation {conversation}")
        return state

    async def _notify(self, state: ConversationState, template: str, **context: Any) -> None:
        text = self.templates.render(template, state.language, **context)
        await self._send(state, text, f"handoff:{state.conversation}:{uuid.uuid4().hex}")

    async def _send(self, state: ConversationState, text: str, key: str) -> None:
        hints = state.reply_hints
        reply = OutboundMessage(
            channel=state.channel,
            account=state.account,
            recipient=state.sender,
            conversation=state.conversation,
            idempotency_key=key,
            text=text,
            extra=hints,
        )
        await self.store.save_outbound(reply)
        await self.outbox.enqueue((reply,))

    async def _record(self, conversation: str, event: str, **fields: str) -> None:
        await self.events.insert_one({"conversation": conversation, "event": event, "at": time.time(), **fields})
