"""Conversations and messages in MongoDB (PyMongo's async API).

Every write is an idempotent upsert keyed by the message's own identity, so a worker
that handles a reclaimed message again leaves exactly one record. The writes of every
turn (the message, its conversation, the replies, the sent marks) go through one
:class:`~bot.group_commit.GroupCommit` per collection, so the turns in flight share a
command instead of paying one each. Indexes match the
console's queries: a conversation's messages by time, a customer's history, and work
lists by status.
"""

from __future__ import annotations

import re
import time
import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from bot.group_commit import GroupCommit
from bot.messages import InboundMessage, OutboundMessage
from bot.metrics import Metrics
from bot.mongo import Document


class MessageStore:
    def __init__(self, db: AsyncDatabase[Document], *, metrics: Metrics | None = None) -> None:
        self.db = db
        self.metrics = metrics
        self.messages = db["messages"]
        self.conversations = db["conversations"]
        self.dead_letters = db["dead_letters"]
        self.message_writes = GroupCommit(self.messages)
        # Shared with the state store: a turn's conversation writes ride one command.
        self.conversation_writes = GroupCommit(self.conversations)

    async def ensure_indexes(self) -> None:
        await self.messages.create_indexes(
            [
                IndexModel([("conversation", ASCENDING), ("ts", ASCENDING)]),
                IndexModel([("customer", ASCENDING), ("ts", DESCENDING)]),
                IndexModel([("status", ASCENDING), ("ts", DESCENDING)]),
                IndexModel([("in_reply_to", ASCENDING)]),
            ]
        )
        await self.conversations.create_indexes(
            [
                IndexModel([("customer", ASCENDING)]),
                IndexModel([("status", ASCENDING), ("last_at", DESCENDING)]),
                IndexModel([("owner", ASCENDING), ("last_at", DESCENDING)]),
            ]
        )
        await self.dead_letters.create_indexes([IndexModel([("at", DESCENDING)])])

    async def save_inbound(self, msg: InboundMessage) -> bool:
        """Record the message and touch its conversation; True if this created the
        conversation's record (then MongoDB holds no state for it yet)."""
        doc: Document = {
            "direction": "in",
            "channel": msg.channel,
            "account": msg.account,
            "customer": channel_identity(msg.channel, msg.account, msg.sender),
            "sender": msg.sender,
            "conversation": msg.conversation,
            "kind": msg.kind.value,
            "platform_id": msg.platform_id,
            "ts": msg.timestamp,
            "text": msg.text,
            "event": msg.event,
            "event_key": msg.event_key,
            "media": None
            if msg.media is None
            else {"media_id": msg.media.media_id, "format": msg.media.format, "url": msg.media.url, "recognition": msg.media.recognition},
            "location": list(msg.location) if msg.location else None,
            "link_url": msg.link_url,
            "raw": msg.raw,
            "status": "received",
        }
        conversation = UpdateOne(
            {"_id": msg.conversation},
            {
                "$setOnInsert": {
                    "channel": msg.channel,
                    "account": msg.account,
                    "customer": doc["customer"],
                    "status": "bot",
                    "created_at": msg.timestamp,
                },
                "$max": {"last_at": msg.timestamp},
            },
            upsert=True,
        )
        _, created = await asyncio.gather(
            self.message_writes.write([UpdateOne({"_id": msg.key}, {"$setOnInsert": doc}, upsert=True)]),
            self.conversation_writes.write([conversation]),
        )
        return created[0]

    async def active_conversations(self, start: float, end: float) -> set[str]:
        """Conversations in which the customer wrote between ``start`` and ``end``."""
        found = await self.messages.distinct("conversation", {"direction": "in", "ts": {"$gte": start, "$lt": end}})
        return {str(c) for c in found}

    async def update_inbound(self, key: str, fields: Mapping[str, Any]) -> None:
        await self.messages.update_one({"_id": key}, {"$set": dict(fields)})

    async def save_outbound(self, reply: OutboundMessage, *, status: str = "queued") -> None:
        await self.save_outbound_many((reply,), status=status)

    async def save_outbound_many(self, replies: Sequence[OutboundMessage], *, status: str = "queued") -> None:
        """Record replies before they are queued (one group commit for a turn's replies)."""
        ops = []
        for reply in replies:
            doc = _outbound_doc(reply)
            doc.update(status=status, attempts=0)
            ops.append(UpdateOne({"_id": "out:" + reply.idempotency_key}, {"$setOnInsert": doc}, upsert=True))
        await self.message_writes.write(ops)

    async def mark_outbound(self, idempotency_key: str, status: str, *, reply: OutboundMessage | None = None, **fields: Any) -> None:
        """Set a reply's delivery status. With ``reply``, a missing record is created from
        it: bulk senders (digests) leave the record to the sender instead of writing one
        per message before queueing."""
        update: Document = {"$set": {"status": status, "status_at": time.time(), **fields}}
        if reply is not None:
            update["$setOnInsert"] = _outbound_doc(reply)
        await self.message_writes.write([UpdateOne({"_id": "out:" + idempotency_key}, update, upsert=reply is not None)])

    async def dead_letter(self, *, kind: str, key: str, payload: str, reason: str, attempts: int) -> None:
        await self.dead_letters.update_one(
            {"_id": f"{kind}:{key}"},
            {"$set": {"kind": kind, "key": key, "payload": payload, "reason": reason, "attempts": attempts, "at": time.time()}},
            upsert=True,
        )
        if self.metrics is not None:
            self.metrics.dead_letters.labels(kind).inc()

    async def dead_letters_recent(self, limit: int = 200) -> list[Document]:
        return [doc async for doc in self.dead_letters.find({}).sort("at", DESCENDING).limit(limit)]

    async def find_dead_letter(self, record_id: str) -> Document | None:
        return await self.dead_letters.find_one({"_id": record_id})

    async def take_dead_letter(self, record_id: str) -> Document | None:
        """Remove a dead letter and return it; None if another request took it first."""
        doc = await self.dead_letters.find_one({"_id": record_id})
        if doc is None:
            return None
        res = await self.dead_letters.delete_one({"_id": record_id})
        return doc if res.deleted_count == 1 else None

    async def messages_by_id(self, ids: list[str]) -> list[Document]:
        """Message records by id, oldest first (one round trip)."""
        if not ids:
            return []
        return [doc async for doc in self.messages.find({"_id": {"$in": ids}}).sort("ts", ASCENDING)]

    async def message(self, record_id: str) -> Document | None:
        return await self.messages.find_one({"_id": record_id})

    async def last_inbound(self, conversation: str) -> Document | None:
        return await self.messages.find_one({"conversation": conversation, "direction": "in"}, sort=[("ts", DESCENDING)])

    async def customer_conversations(self, customer: str, limit: int = 20) -> list[Document]:
        """A customer's conversations, most recent first (the console's customer card)."""
        cursor = self.conversations.find({"customer": customer}, {"state": 0}).sort("last_at", DESCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def search_conversations(
        self,
        *,
        customer: str = "",
        channel: str = "",
        text: str = "",
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[Document]:
        """Conversations with messages matching all given criteria, most recent first:
        one row per conversation with its last matching message."""
        query: Document = {}
        if customer:
            query["customer"] = {"$regex": re.escape(customer), "$options": "i"}
        if channel:
            query["channel"] = channel
        if text:
            query["text"] = {"$regex": re.escape(text), "$options": "i"}
        if since is not None or until is not None:
            query["ts"] = {**({"$gte": since} if since is not None else {}), **({"$lt": until} if until is not None else {})}
        pipeline: list[Document] = [
            {"$match": query},
            {"$sort": {"ts": -1}},
            {"$group": {"_id": "$conversation", "last_at": {"$first": "$ts"}, "text": {"$first": "$text"},
                        "customer": {"$first": "$customer"}, "channel": {"$first": "$channel"}, "matches": {"$sum": 1}}},
            {"$sort": {"last_at": -1}},
            {"$limit": limit},
        ]
        return [doc async for doc in await self.messages.aggregate(pipeline)]

    async def conversation_messages(self, conversation: str, limit: int = 100) -> list[Document]:
        cursor = self.messages.find({"conversation": conversation}).sort("ts", ASCENDING).limit(limit)
        return [doc async for doc in cursor]


def _outbound_doc(reply: OutboundMessage) -> Document:
    return {
        "direction": "out",
        "channel": reply.channel,
        "account": reply.account,
        "customer": channel_identity(reply.channel, reply.account, reply.recipient),
        "recipient": reply.recipient,
        "conversation": reply.conversation,
        "kind": reply.kind.value,
        "text": reply.text,
        "in_reply_to": reply.in_reply_to,
        "topic": reply.topic,
        "ts": time.time(),
    }


def channel_identity(channel: str, account: str, sender: str) -> str:
    """A customer's identity on one channel account (linking across channels is the
    preference store's job)."""
    return f"{channel}:{account}:{sender}"
