"""bot.mongo.update_and_get on the real MongoDB-protocol server: a claim has one winner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from bot.mongo import update_and_get


async def test_concurrent_claims_have_one_winner_and_see_the_update(mongo: AsyncMongoClient[Any]) -> None:
    coll = mongo.get_default_database()["claims"]
    await coll.insert_one({"_id": "r1", "status": "new", "n": 0})
    results = await asyncio.gather(
        *(update_and_get(coll, {"_id": "r1", "status": "new"}, {"$set": {"status": "taken", "by": i}, "$inc": {"n": 1}}) for i in range(8))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0]["status"] == "taken" and winners[0]["n"] == 1
    assert (await coll.find_one({"_id": "r1"}) or {})["by"] == winners[0]["by"]


async def test_no_match_is_none_and_changes_nothing(mongo: AsyncMongoClient[Any]) -> None:
    coll = mongo.get_default_database()["claims"]
    await coll.insert_one({"_id": "r2", "version": 3})
    assert await update_and_get(coll, {"_id": "r2", "version": 2}, {"$set": {"version": 3, "x": 1}}) is None
    assert await update_and_get(coll, {"_id": "missing"}, {"$set": {"x": 1}}) is None
    assert await coll.find_one({"_id": "r2"}) == {"_id": "r2", "version": 3}


async def test_a_query_without_id_is_refused(mongo: AsyncMongoClient[Any]) -> None:
    with pytest.raises(ValueError, match="_id"):
        await update_and_get(mongo.get_default_database()["claims"], {"status": "new"}, {"$set": {"status": "taken"}})
