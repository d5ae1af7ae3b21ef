"""Console users in MongoDB, passwords hashed with argon2id.

:class:`UserStore` owns the ``console_users`` collection. Hashing and verifying run in
a worker thread: argon2id is deliberately slow (tens of milliseconds of CPU) and must
not stall the event loop that serves every agent's live page.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from admin.roles import Role
from admin.zones import zone
from webui.errors import BadInput, NotFound

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
LANGUAGES = ("zh", "en")

# A hash of a random password, verified when the user does not exist so that a wrong
# name costs as much time as a wrong password.
_HASHER = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
_DUMMY_HASH = _HASHER.hash("kefu-console-no-such-user")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    language: str = "zh"
    time_zone: str = "Asia/Shanghai"
    disabled: bool = False

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> User:
        return cls(
            name=str(doc["_id"]),
            role=Role(doc["role"]),
            language=str(doc.get("language", "zh")),
            time_zone=str(doc.get("time_zone", "Asia/Shanghai")),
            disabled=bool(doc.get("disabled", False)),
        )

    def public(self) -> dict[str, Any]:
        """What the audit log records of a user (never the hash)."""
        return {"role": self.role.value, "language": self.language, "time_zone": self.time_zone, "disabled": self.disabled}


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise BadInput("a user name is 2-32 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise BadInput("a password may have at most 1024 characters")
    return password


USER = web.RequestKey("console_user", User)  # the signed-in user of a console request


class UserStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.users = db["console_users"]

    async def ensure_indexes(self) -> None:
        await self.users.create_index("role")

    async def create(self, name: str, role: Role, password: str, *, language: str = "zh") -> User:
        check_name(name)
        check_password(password)
        digest = await asyncio.to_thread(_HASHER.hash, password)
        doc = {"_id": name, "role": role.value, "password": digest, "language": language, "created_at": time.time()}
        try:
            await self.users.insert_one(doc)
        except DuplicateKeyError:
            raise BadInput(f"user {name!r} exists already") from None
        return User.from_doc(doc)

    async def ensure(self, name: str, role: Role, password: str) -> bool:
        """Create the user unless one of that name exists (its password is then left
        alone); whether it was created."""
        if await self.users.count_documents({"_id": name}, limit=1):
            return False
        try:
            await self.create(name, role, password)
        except BadInput:  # created by another process a moment ago
            return False
        return True

    async def get(self, name: str) -> User | None:
        doc = await self.users.find_one({"_id": name}, {"password": 0})
        return User.from_doc(doc) if doc else None

    async def require(self, name: str) -> User:
        user = await self.get(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    async def all(self) -> list[User]:
        return [User.from_doc(d) async for d in self.users.find({}, {"password": 0}).sort("_id", 1)]

    async def with_roles(self, roles: frozenset[Role]) -> list[User]:
        query = {"role": {"$in": [r.value for r in roles]}, "disabled": {"$ne": True}}
        return [User.from_doc(d) async for d in self.users.find(query, {"password": 0}).sort("_id", 1)]

    async def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs and the account is enabled, else None."""
        doc = await self.users.find_one({"_id": name})
        stored = str(doc["password"]) if doc else _DUMMY_HASH
        ok = await asyncio.to_thread(_verify, stored, password)
        if not ok or doc is None or doc.get("disabled"):
            return None
        if _HASHER.check_needs_rehash(stored):
            await self.users.update_one({"_id": name}, {"$set": {"password": await asyncio.to_thread(_HASHER.hash, password)}})
        return User.from_doc(doc)

    async def set_password(self, name: str, password: str) -> None:
        check_password(password)
        digest = await asyncio.to_thread(_HASHER.hash, password)
        res = await self.users.update_one({"_id": name}, {"$set": {"password": digest, "password_changed_at": time.time()}})
        if res.matched_count == 0:
            raise NotFound(f"no user {name!r}")

    async def update(self, name: str, **fields: Any) -> tuple[User, User]:
        """Change role, language, time zone or disabled; returns (before, after)."""
        before = await self.require(name)
        allowed = {"role", "language", "time_zone", "disabled"}
        if set(fields) - allowed:
            raise BadInput(f"cannot change {sorted(set(fields) - allowed)}")
        if "language" in fields and fields["language"] not in LANGUAGES:
            raise BadInput(f"language must be one of {LANGUAGES}")
        if "time_zone" in fields:
            await zone(str(fields["time_zone"]))
        if "role" in fields:
            fields["role"] = Role(fields["role"]).value
        await self.users.update_one({"_id": name}, {"$set": fields})
        return before, await self.require(name)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
