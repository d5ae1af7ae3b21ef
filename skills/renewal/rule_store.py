"""The renewal rules as stored: the only owner of the ``renewal_rules`` collection and of
``renewal_rule_versions``, every version kept so that any can be read and restored."""

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
        self.versions = db["renewal_rule_versions"]
        self.clock = clock

    async def list_rules(self) -> list[Document]:
        return [r async for r in self.rules.find({}).sort("_id", ASCENDING)]

    async def enabled(self) -> list[Document]:
        return [r for r in await self.list_rules() if r.get("enabled", True)]

    async def put_rule(self, rule_id: str, data: Mapping[str, Any], *, actor: str = "api") -> Document:
        clean = validate_rule(data)
        clean["updated_at"] = self.clock.now()
        await self.rules.update_one({"_id": rule_id}, {"$set": clean, "$inc": {"version": 1}}, upsert=True)
        stored = await self.rules.find_one({"_id": rule_id})
        assert stored is not None
        await self.versions.update_one(
            {"_id": f"{rule_id}#{stored['version']}"},
            {"$setOnInsert": {"rule": rule_id, "version": stored["version"], "at": clean["updated_at"], "actor": actor,
                              "rule_body": {k: clean[k] for k in ("name", "when", "then", "enabled")}}},
            upsert=True,
        )
        return stored

    async def get_rule(self, rule_id: str) -> Document | None:
        return await self.rules.find_one({"_id": rule_id})

    async def rule_version(self, rule_id: str, version: int) -> Document | None:
        """The rule as stored in ``version`` (name, when, then, enabled)."""
        found = await self.versions.find_one({"rule": rule_id, "version": version})
        return None if found is None else dict(found["rule_body"])

    async def rule_history(self, rule_id: str) -> list[Document]:
        return [d async for d in self.versions.find({"rule": rule_id}).sort("version", -1).limit(100)]

    async def delete_rule(self, rule_id: str) -> bool:
        return (await self.rules.delete_one({"_id": rule_id})).deleted_count == 1
