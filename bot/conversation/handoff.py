"""The hand-off between the bot and human agents, as an explicit state machine.

    bot ──(request_human | repeated fallback | product complaint | NLU gone too long)──► queue
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

from bot.conversation.events import ConversationEvent, ConversationEvents
from bot.conversation.handoff_reasons import HandoffReason
from bot.conversation.ordering import ConversationGate
from bot.conversation.state import AGENT_PREFIX, BOT, QUEUE, ConversationState, StateStore
from bot.errors import KefuError
from bot.logs import ref
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
        events: ConversationEvents | None = None,
    ) -> None:
        self.redis = redis
        self.events = db["handoffs"]
        self.states = states
        self.gate = gate
        self.outbox = outbox
        self.store = store
        self.templates = templates
        self.channels = channels
        self.bus = events

    async def ensure_indexes(self) -> None:
        await self.events.create_indexes(
            [IndexModel([("conversation", ASCENDING), ("at", ASCENDING)]), IndexModel([("event", ASCENDING), ("at", ASCENDING)])]
        )

    async def to_queue(self, state: ConversationState, reason: HandoffReason) -> None:
        """Put a conversation in the human queue (called by skills, inside the turn)."""
        if not state.bot_active:
            return
        state.owner = QUEUE
        state.handoff_reason = reason.text
        state.handoff_code = reason.code
        state.handoff_params = dict(reason.params)
        state.told_waiting = False
        state.form = None
        state.active_skill = ""
        await self.redis.zadd(WAITING, {state.conversation: time.time()}, nx=True)
        await self._record(state.conversation, "queued", reason=reason.text, code=reason.code, params=reason.params)
        # The code at INFO: a reason's sentence can hold what the customer typed (a
        # contract number, a masked phone), which stays at DEBUG.
        log.info("%s queued for a human (%s)", ref(state.conversation), reason.code)
        log.debug("%s queued for a human: %s", ref(state.conversation), reason.text)

    async def position(self, conversation: str) -> int:
        """How many conversations wait ahead of this one (0: next)."""
        rank: Any = await self.redis.zrank(WAITING, conversation)
        return int(rank) if rank is not None else 0

    async def queued_between(self, start: float, end: float) -> list[tuple[str, str]]:
        """(conversation, reason) of every hand-off to the queue in ``[start, end)``: the
        reason's code, so that hand-offs of one kind count together (one complaint case's
        id does not make a kind of its own); the sentence for records without a code."""
        cursor = self.events.find(
            {"event": "queued", "at": {"$gte": start, "$lt": end}}, {"conversation": 1, "reason": 1, "code": 1}
        )
        return [(str(d["conversation"]), str(d.get("code") or d.get("reason", ""))) async for d in cursor]

    async def waiting(self) -> list[dict[str, Any]]:
        """Conversations waiting for an agent, longest-waiting first (two round trips)."""
        items: Any = await self.redis.zrange(WAITING, 0, -1, withscores=True)
        members = [(m.decode() if isinstance(m, bytes) else str(m), float(since)) for m, since in items]
        states = await self.states.get_many([c for c, _ in members])
        out: list[dict[str, Any]] = []
        for conversation, since in members:
            state = states.get(conversation)
            out.append(
                {
                    "conversation": conversation,
                    "waiting_since": since,
                    "reason": state.handoff_reason if state else "",
                    "reason_code": state.handoff_code if state else "",
                    "reason_params": dict(state.handoff_params) if state else {},
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
        sent = await self._notify(state, "agent_joined", agent=agent)
        await self._publish("claimed", state, agent, sent)
        return state

    async def transfer(self, conversation: str, agent: str, to_agent: str) -> ConversationState:
        """Give a conversation ``agent`` holds to ``to_agent``; the customer is not told."""
        if to_agent == agent:
            raise HandoffError("a conversation cannot be transferred to the agent who has it")
        async with self.gate.locked(conversation):
            state = await self._state(conversation)
            if state.owner != AGENT_PREFIX + agent:
                raise HandoffError(f"{conversation} is not with agent {agent}")
            state.owner = AGENT_PREFIX + to_agent
            await self.states.save(state)
            await self._record(conversation, "transferred", agent=agent, to=to_agent)
        await self._tell_platform(state, to_agent)
        await self._publish("transferred", state, to_agent)
        return state

    async def agent_reply(self, conversation: str, agent: str, text: str) -> str:
        if not text.strip():
            raise HandoffError("an agent reply needs text")
        state = await self._state(conversation)
        if state.owner != AGENT_PREFIX + agent:
            raise HandoffError(f"{conversation} is not with agent {agent}; claim it first")
        key = f"agent:{conversation}:{uuid.uuid4().hex}"
        record = await self._send(state, text, key)
        await self._publish("message", state, agent, record)
        return key

    async def hand_back(self, conversation: str, agent: str) -> ConversationState:
        """The bot answers again; the customer is told so."""
        return await self._release(conversation, agent, "handed_back", "handed_back")

    async def close(self, conversation: str, agent: str) -> ConversationState:
        """The agent is done: the customer gets a goodbye and the bot takes the next message."""
        return await self._release(conversation, agent, "closed", "goodbye")

    async def _release(self, conversation: str, agent: str, event: str, template: str) -> ConversationState:
        async with self.gate.locked(conversation):
            state = await self._state(conversation)
            if state.owner != AGENT_PREFIX + agent:
                raise HandoffError(f"{conversation} is not with agent {agent}")
            state.owner = BOT
            state.fallback_count = 0
            state.small_talk_count = 0
            state.handoff_reason = ""
            state.handoff_code = ""
            state.handoff_params = {}
            await self.states.save(state)
            await self._record(conversation, event, agent=agent)
        await self._tell_platform(state, "")
        sent = await self._notify(state, template)
        await self._publish(event, state, agent, sent)
        return state

    async def _tell_platform(self, state: ConversationState, agent: str) -> None:
        channel = self.channels(state.channel, state.account)
        if channel is None:
            return
        try:
            await channel.handoff_changed(state.conversation, state.sender, agent=agent)
        except Exception:
            # Kefu's own record is authoritative; a platform that missed it is logged.
            log.error("%s: could not tell %s about the hand-off", ref(state.conversation), state.channel, exc_info=True)

    async def _state(self, conversation: str) -> ConversationState:
        state = await self.states.get(conversation)
        if state is None:
            raise UnknownConversation(f"no conversation {conversation}")
        return state

    async def _notify(self, state: ConversationState, template: str, **context: Any) -> str:
        text = self.templates.render(template, state.language, **context)
        return await self._send(state, text, f"handoff:{state.conversation}:{uuid.uuid4().hex}")

    async def _publish(self, kind: str, state: ConversationState, agent: str, *records: str) -> None:
        if self.bus is not None:
            await self.bus.publish(
                ConversationEvent(kind, state.conversation, owner=state.owner, messages=records, agent=agent)
            )

    async def _send(self, state: ConversationState, text: str, key: str) -> str:
        """Store and queue a text to the customer; returns its message record id."""
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
        return "out:" + key

    async def _record(self, conversation: str, event: str, **fields: str | dict[str, str]) -> None:
        await self.events.insert_one({"conversation": conversation, "event": event, "at": time.time(), **fields})
