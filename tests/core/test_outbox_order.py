"""The outbox sender keeps one conversation's replies in order and sends conversations
side by side (real Redis and MongoDB-protocol server; a channel that records sends)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from bot.messages import OutboundMessage
from bot.outbox import Outbox, OutboxSender
from bot.store import MessageStore


class SlowFirstChannel:
    """Takes 0.3 s over the first text of each conversation and no time over the rest:
    replies sent side by side would arrive out of order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._seen: set[str] = set()

    async def send(self, reply: OutboundMessage) -> None:
        if reply.conversation not in self._seen:
            self._seen.add(reply.conversation)
            await asyncio.sleep(0.3)
        self.sent.append((reply.conversation, reply.text))


def _reply(conversation: str, text: str) -> OutboundMessage:
    return OutboundMessage(channel="fake", account="a", recipient=conversation, conversation=conversation,
                           idempotency_key=f"{conversation}:{text}", text=text)


async def test_one_conversations_replies_go_out_in_order_and_others_do_not_wait(
    redis: Redis, mongo: AsyncMongoClient[Any]
) -> None:
    outbox = Outbox(redis, "test:outbox:order")
    channel = SlowFirstChannel()
    sender = OutboxSender(outbox, MessageStore(mongo.get_default_database()), lambda _c, _a: channel,  # type: ignore[arg-type,return-value]
                          consumer="t", claim_idle_ms=60_000, max_attempts=3, backoff_s=0.1, backoff_max_s=1.0)
    await outbox.enqueue([_reply("c1", "text"), _reply("c1", "image"), _reply("c2", "text"), _reply("c1", "rating")])
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    async with asyncio.timeout(10):
        while len(channel.sent) < 4:
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [t for c, t in channel.sent if c == "c1"] == ["text", "image", "rating"]
    # c2 was sent side by side with c1, not after it: both first sends took 0.3 s at once.
    assert {channel.sent[0][0], channel.sent[1][0]} == {"c1", "c2"}
