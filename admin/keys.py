"""API keys created in the console: shown once, kept only as SHA-256 digests.

:class:`ApiKeyStore` owns the ``api_keys`` collection. The ``/api`` middleware asks it
for a presented key's scopes (after the keys configured in kefu.yml); a revoked key
stops working at once in every process because nothing is cached.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from webui.errors import BadInput, NotFound


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str  # the digest's first 12 hex digits: enough to tell keys apart, useless to use
    label: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: float


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], known_scopes: tuple[str, ...]) -> None:
        self.keys = db["api_keys"]
        self.known_scopes = known_scopes

    async def ensure_indexes(self) -> None:
        await self.keys.create_index("prefix")

    async def create(self, label: str, scopes: list[str], created_by: str) -> tuple[str, ApiKeyInfo]:
        """A new key; the plain key is returned here and never stored."""
        label = label.strip()
        if not label or len(label) > 80:
            raise BadInput("a key needs a label of at most 80 characters")
        unknown = set(scopes) - set(self.known_scopes)
        if unknown or not scopes:
            raise BadInput(f"choose scopes from: {', '.join(self.known_scopes)}")
        plain = "kefu_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(plain.encode()).hexdigest()
        info = ApiKeyInfo(digest[:12], label, tuple(sorted(scopes)), created_by, time.time())
        await self.keys.insert_one(
            {"_id": digest, "prefix": info.id, "label": label, "scopes": list(info.scopes), "created_by": created_by, "created_at": info.created_at}
        )
        return plain, info

    async def all(self) -> list[ApiKeyInfo]:
        return [
            ApiKeyInfo(str(d["_id"])[:12], d["label"], tuple(d["scopes"]), d["created_by"], d["created_at"])
            async for d in self.keys.find({"revoked_at": {"$exists": False}}).sort("created_at", 1)
        ]

    async def revoke(self, key_id: str) -> ApiKeyInfo:
        doc = await self.keys.find_one({"prefix": key_id, "revoked_at": {"$exists": False}})
        if doc is None:
            raise NotFound("no such API key")
        await self.keys.update_one({"_id": doc["_id"]}, {"$set": {"revoked_at": time.time()}})
        return ApiKeyInfo(str(doc["_id"])[:12], doc["label"], tuple(doc["scopes"]), doc["created_by"], doc["created_at"])

    async def scopes_of(self, presented: str) -> frozenset[str] | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        doc = await self.keys.find_one({"_id": digest, "revoked_at": {"$exists": False}}, {"scopes": 1})
        return frozenset(doc["scopes"]) if doc else None
