"""The customer's data as an encrypted ZIP, downloaded from the portal.

AES-256 (WinZip AE-2, which 7-Zip, macOS Archive Utility and WinRAR open) with a random
password that the portal shows once, on the page that made the export; the password is
never stored or sent with the file. :class:`Exports` owns ``portal_exports``: the
encrypted bytes wait there, for the account holder's session only, until they expire.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
import uuid
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import pyzipper
from bson.binary import Binary
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from preferences.data_rights import EXPORT_FORMATS, export_files

_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no look-alikes


@dataclass(frozen=True, slots=True)
class Export:
    id: str
    formats: tuple[str, ...]
    size: int
    created_at: float
    expires_at: float


def new_password(length: int = 16) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def encrypted_zip(sections: Mapping[str, list[dict[str, Any]]], formats: Collection[str], password: str) -> bytes:
    """CPU work: call it in a thread."""

    def open_zip(buf: io.BytesIO, mode: str, compression: int) -> zipfile.ZipFile:
        zf = pyzipper.AESZipFile(buf, mode, compression=compression, encryption=pyzipper.WZ_AES)
        zf.setpassword(password.encode())
        zf.setencryption(pyzipper.WZ_AES, nbits=256)
        return zf  # type: ignore[no-any-return]

    return export_files(open_zip, sections, formats)


class Exports:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, ttl_s: float) -> None:
        self._collection = db["portal_exports"]
        self.ttl_s = ttl_s

    async def ensure_indexes(self) -> None:
        await self._collection.create_indexes([IndexModel([("customer", ASCENDING), ("created_at", ASCENDING)])])

    async def create(self, customer: str, sections: Mapping[str, list[dict[str, Any]]], formats: Collection[str]) -> tuple[Export, str]:
        """The stored export and its password (returned here only)."""
        chosen = tuple(f for f in EXPORT_FORMATS if f in formats)
        password = new_password()
        data = await asyncio.to_thread(encrypted_zip, sections, chosen, password)
        now = time.time()
        export = Export(uuid.uuid4().hex, chosen, len(data), now, now + self.ttl_s)
        await self._collection.insert_one({
            "_id": export.id, "customer": customer, "formats": list(chosen), "size": export.size,
            "created_at": now, "expires_at": export.expires_at, "zip": Binary(data),
        })
        return export, password

    async def of_customer(self, customer: str) -> list[Export]:
        cursor = self._collection.find({"customer": customer, "expires_at": {"$gt": time.time()}}, {"zip": 0}).sort("created_at", -1).limit(20)
        return [Export(str(d["_id"]), tuple(d["formats"]), int(d["size"]), float(d["created_at"]), float(d["expires_at"])) async for d in cursor]

    async def download(self, customer: str, export_id: str) -> bytes | None:
        doc = await self._collection.find_one({"_id": export_id, "customer": customer, "expires_at": {"$gt": time.time()}})
        return None if doc is None else bytes(doc["zip"])
