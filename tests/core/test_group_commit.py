"""Group commits on the real MongoDB-protocol server: concurrent writers share a command,
and one poison item fails alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import WriteError

from bot.group_commit import GroupCommit
from bot.messages import InboundMessage, MessageKind, OutboundMessage
from bot.store import MessageStore


def _message(i: int, text: str = "hello") -> InboundMessage:
    return InboundMessage(
        channel="wechat", account="acc", sender=f"user{i}", conversation=f"wechat:acc:user{i}",
        kind=MessageKind.TEXT, text=text, platform_id=str(i), timestamp=time.time(),
    )


async def test_concurrent_turns_share_commands(mongo: AsyncMongoClient[Any]) -> None:
    store = MessageStore(mongo.get_default_database())
    created = await asyncio.gather(*(store.save_inbound(_message(i)) for i in range(30)))
    assert created == [True] * 30  # each conversation's record is new
    assert store.message_writes.commands <= 3 and store.conversation_writes.commands <= 3
    assert await store.messages.count_documents({"direction": "in"}) == 30
    assert await store.conversations.count_documents({}) == 30
    # Handled again after a takeover: one record each, and the conversation is not new.
    assert await asyncio.gather(*(store.save_inbound(_message(i)) for i in range(30))) == [False] * 30
    assert await store.messages.count_documents({"direction": "in"}) == 30


async def test_a_poison_message_fails_alone(mongo: AsyncMongoClient[Any]) -> None:
    store = MessageStore(mongo.get_default_database())
    messages = [_message(i, text="\ud800" if i == 3 else f"text {i}") for i in range(8)]
    results = await asyncio.gather(*(store.save_inbound(m) for m in messages), return_exceptions=True)
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [3]
    stored = {d["_id"] async for d in store.messages.find({}, {"_id": 1})}
    assert stored == {m.key for i, m in enumerate(messages) if i != 3}


async def test_a_poison_reply_fails_alone(mongo: AsyncMongoClient[Any]) -> None:
    store = MessageStore(mongo.get_default_database())

    def reply(i: int, text: str) -> OutboundMessage:
        return OutboundMessage(channel="wechat", account="acc", recipient=f"user{i}", conversation=f"c{i}",
                               idempotency_key=f"m{i}#0", text=text)

    results = await asyncio.gather(
        *(store.save_outbound_many([reply(i, "bad \udfff" if i == 1 else "ok")]) for i in range(5)), return_exceptions=True
    )
    assert [isinstance(r, BaseException) for r in results] == [False, True, False, False, False]
    assert await store.messages.count_documents({"direction": "out"}) == 4


async def test_a_refused_write_fails_only_its_caller(mongo: AsyncMongoClient[Any]) -> None:
    coll = mongo.get_default_database()["counters"]
    await coll.insert_many([{"_id": i, "n": 0} for i in range(6)])
    commit = GroupCommit(coll)

    async def bump(i: int) -> list[bool]:
        by: Any = "not a number" if i == 2 else 1  # the server refuses $inc with a string
        return await commit.write([UpdateOne({"_id": i}, {"$inc": {"n": by}})])

    results = await asyncio.gather(*(bump(i) for i in range(6)), return_exceptions=True)
    assert isinstance(results[2], WriteError)
    assert [r for i, r in enumerate(results) if i != 2] == [[False]] * 5
    assert commit.commands == 1  # the server's refusal needs no retry: the others were applied
    assert {d["_id"]: d["n"] async for d in coll.find({})} == {0: 1, 1: 1, 2: 0, 3: 1, 4: 1, 5: 1}


async def test_nothing_to_write_sends_nothing(mongo: AsyncMongoClient[Any]) -> None:
    commit = GroupCommit(mongo.get_default_database()["empty"])
    assert await commit.write([]) == []
    assert commit.commands == 0


@pytest.mark.parametrize("count", [1, 40])
async def test_upserts_report_what_they_created(mongo: AsyncMongoClient[Any], count: int) -> None:
    coll = mongo.get_default_database()["things"]
    await coll.insert_one({"_id": 0})
    commit = GroupCommit(coll)
    ops = [UpdateOne({"_id": i}, {"$set": {"seen": True}}, upsert=True) for i in range(count)]
    assert await commit.write(ops) == [i != 0 for i in range(count)]
