"""Conversation state: in Redis for speed, written through to MongoDB to survive Redis.

One record per conversation: its language, the active skill and form with the slots
filled so far, how many times in a row the bot did not understand, and who owns the
conversation (the bot, the human queue, or a named agent). Skills change it through
the turn; the worker saves it after the turn, under the conversation's lock.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.group_commit import GroupCommit

STATE_PREFIX = "kefu:conv:state:"
STATE_TTL_S = 30 * 86_400

BOT = "bot"
QUEUE = "queue"  # waiting for a human
AGENT_PREFIX = "agent:"


@dataclass
class FormState:
    name: str
    slots: dict[str, str] = field(default_factory=dict)
    asking: str = ""  # the slot the last prompt asked for
    prompt: str = ""  # the template of that prompt, to remind the customer of it
    # Another skill took a turn while the form was open: it is set aside (it takes only
    # answers that clearly fit) and the customer was reminded of it once.
    paused: bool = False
    reminded: bool = False
    last_turn: str = ""  # the message the form last handled


@dataclass
class KnowledgeOffer:
    """Close knowledge entries the bot asked the customer to choose between (a
    clarifying question): their ids and the titles shown, in the order numbered, the
    question asked and when."""

    entries: list[str]
    titles: list[str]
    question: str
    at: float


@dataclass
class ConversationState:
    conversation: str
    customer: str
    channel: str
    account: str
    sender: str
    language: str = "zh"
    owner: str = BOT
    active_skill: str = ""
    form: FormState | None = None
    fallback_count: int = 0  # consecutive turns the bot did not understand
    small_talk_count: int = 0  # consecutive small-talk / out-of-scope turns
    last_intent: str = ""
    # Why the conversation waits for a human: the English sentence (what the API shows),
    # and the code and parameters it was made from (empty in records older than codes).
    handoff_reason: str = ""
    handoff_code: str = ""
    handoff_params: dict[str, str] = field(default_factory=dict)
    # The last inbound message's channel hints (DingTalk sessionWebhook, email
    # Message-ID), so that an agent's or the bot's later messages thread like a reply.
    reply_hints: tuple[tuple[str, str], ...] = ()
    # A voice note's transcript the bot asked the customer to confirm, that note's
    # message key, and whether the customer said it was wrong (the next sentence is
    # then what they meant: a corrected transcript for the trainer).
    heard: str = ""
    heard_message: str = ""
    heard_denied: bool = False
    # The skill whose question is open (a yes/no, an order or contract number), so that
    # a bare answer goes to it.
    awaiting: str = ""
    # The knowledge entry the bot last answered with, the question it answered and when,
    # so that "不是这个" right after is heard as a rejection of that answer.
    answered_entry: str = ""
    answered_question: str = ""
    answered_at: float = 0.0
    # The choice the bot offered on the last turn, so that "2" next picks from it (it
    # lapses on any other turn, see knowledge.skill).
    offer: KnowledgeOffer | None = None
    # While waiting for a person: the customer was told so (once per wait).
    told_waiting: bool = False
    updated_at: float = 0.0

    @property
    def bot_active(self) -> bool:
        return self.owner == BOT

    @property
    def agent(self) -> str:
        return self.owner.removeprefix(AGENT_PREFIX) if self.owner.startswith(AGENT_PREFIX) else ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        form = data.pop("form", None)
        offer = data.pop("offer", None)
        hints = data.pop("reply_hints", None) or ()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(
            **known, form=FormState(**form) if form else None, offer=KnowledgeOffer(**offer) if offer else None,
            reply_hints=tuple((str(k), str(v)) for k, v in hints),
        )


class StateStore:
    def __init__(self, redis: Redis, db: AsyncDatabase[dict[str, Any]], *, writes: GroupCommit | None = None) -> None:
        """``writes``: the group commit of the conversations collection, shared with the
        message store so that a turn's writes to it ride one command."""
        self.redis = redis
        self.conversations = db["conversations"]
        self.writes = writes or GroupCommit(self.conversations)

    async def load(
        self, conversation: str, *, customer: str, channel: str, account: str, sender: str, created: bool = False,
        cached: tuple[bytes | None] | None = None,
    ) -> ConversationState:
        """The conversation's state, or a new one. ``created``: its MongoDB record was
        made just now (see MessageStore.save_inbound), so it holds no state to read.
        ``cached``: its Redis value, read already in a caller's round trip (see
        :meth:`redis_key`)."""
        raw = cached[0] if cached is not None else await self.redis.get(STATE_PREFIX + conversation)
        if raw is not None:
            return ConversationState.from_dict(json.loads(raw))
        doc = None if created else await self.conversations.find_one({"_id": conversation}, {"state": 1})
        if doc and doc.get("state"):
            return ConversationState.from_dict(dict(doc["state"]))
        return ConversationState(conversation=conversation, customer=customer, channel=channel, account=account, sender=sender)

    @staticmethod
    def redis_key(conversation: str) -> str:
        return STATE_PREFIX + conversation

    async def get(self, conversation: str) -> ConversationState | None:
        raw = await self.redis.get(STATE_PREFIX + conversation)
        if raw is not None:
            return ConversationState.from_dict(json.loads(raw))
        doc = await self.conversations.find_one({"_id": conversation}, {"state": 1})
        return ConversationState.from_dict(dict(doc["state"])) if doc and doc.get("state") else None

    async def get_many(self, conversations: list[str]) -> dict[str, ConversationState]:
        """States by conversation in one Redis round trip (MongoDB only for those Redis lost)."""
        if not conversations:
            return {}
        raws = await self.redis.mget([STATE_PREFIX + c for c in conversations])
        out = {c: ConversationState.from_dict(json.loads(raw)) for c, raw in zip(conversations, raws) if raw is not None}
        missing = [c for c in conversations if c not in out]
        if missing:
            async for doc in self.conversations.find({"_id": {"$in": missing}}, {"state": 1}):
                if doc.get("state"):
                    out[str(doc["_id"])] = ConversationState.from_dict(dict(doc["state"]))
        return out

    async def owned_by(self, owner: str, limit: int = 200) -> list[ConversationState]:
        """Conversations with this owner (``agent:<name>``), latest customer message first."""
        cursor = self.conversations.find({"owner": owner}, {"state": 1}).sort("last_at", -1).limit(limit)
        return [ConversationState.from_dict(dict(doc["state"])) async for doc in cursor if doc.get("state")]

    async def save(self, state: ConversationState) -> None:
        """Write the state through to MongoDB, then to Redis."""
        await self.write_through(state)
        await self.redis.set(STATE_PREFIX + state.conversation, state.to_json(), ex=STATE_TTL_S)

    async def write_through(self, state: ConversationState) -> None:
        """The MongoDB half of :meth:`save` (the worker sets the Redis half in its
        end-of-turn script, see bot.end_of_turn)."""
        state.updated_at = time.time()
        # The status field mirrors the owner so the console can list by it with an index.
        status = "bot" if state.bot_active else "waiting" if state.owner == QUEUE else "agent"
        await self.writes.write([UpdateOne(
            {"_id": state.conversation},
            {
                "$set": {"state": asdict(state), "status": status, "owner": state.owner},
                "$setOnInsert": {"customer": state.customer, "channel": state.channel, "account": state.account},
            },
            upsert=True,
        )])
