"""The renewal rules as stored: the only owner of the ``renewal_rules`` collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import Document
from preferences.clock import Clock
from skills.renewal.rules import validate_rule


class RuleStore:
    def __init__(self, db: AsyncDatabase[Document], clock: Clock) -> None:
        self.rules = db["renewal_rules"]
        self.clock = clock

    async def list_rules(self) -> list[Document]:
        return [r async for r in self.rules.find({}).sort("_id", ASCENDING)]

    async def enabled(self) -> list[Document]:
        return [r for r in await self.list_rules() if r.get("enabled", True)]

    async def put_rule(self, rule_id: str, data: Mapping[str, Any]) -> Document:
        clean = validate_rule(data)
        clean["updated_at"] = self.clock.now()
        await self.rules.update_one({"_id": rule_id}, {"$set": clean, "$inc": {"version": 1}}, upsert=True)
        stored = await self.rules.find_one({"_id": rule_id})
        assert stored is not None
        return stored

    async def delete_rule(self, rule_id: str) -> bool:
        return (await self.rules.delete_one({"_id": rule_id})).deleted_count == 1
