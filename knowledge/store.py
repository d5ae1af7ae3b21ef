"""The knowledge base in MongoDB; the one owner of its collections.

``kb_entries``
    ``{_id, questions, answers: {zh: {short, full}, en: {...}}, title, tags, valid_from,
    valid_to, owner, version, updated_at, updated_by, vectors: <float32 bytes, one row
    per question>, encoder: "<package==version>"}``
``kb_history``
    ``{entry, version, content | deleted, at, by}``: every saved version, so that an
    answer the bot gave can be traced to the text it had then.

Each write bumps a revision counter in Redis; retrievers in every process compare it
before a search and rebuild their index when it moved. Vectors are computed when an
entry's questions change, by the same encoder the retriever uses, so no question pays
for encoding the base.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from redis.asyncio import Redis

from knowledge.encoder import SentenceEncoder, Vectors, from_bytes, to_bytes
from knowledge.entry import CONTENT_FIELDS, Entry, entry_from_json
from knowledge.errors import InvalidEntry, UnknownEntry, VersionConflict
from knowledge.retrieval import IndexedEntry

Document = dict[str, Any]
REVISION_KEY = "kefu:kb:revision"
BATCH = 200


@dataclass
class ImportReport:
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (entry id or row, reason)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "changed": self.changed, "unchanged": self.unchanged,
                "failed": [{"entry": e, "reason": r} for e, r in self.failed]}


class KnowledgeStore:
    def __init__(self, db: AsyncDatabase[Document], redis: Redis, encoder: SentenceEncoder) -> None:
        self.entries = db["kb_entries"]
        self.history = db["kb_history"]
        self.redis = redis
        self.encoder = encoder

    async def ensure_indexes(self) -> None:
        await self.entries.create_indexes([IndexModel([("tags", ASCENDING)])])
        await self.history.create_indexes([IndexModel([("entry", ASCENDING), ("version", DESCENDING)])])

    async def revision(self) -> int:
        raw = await self.redis.get(REVISION_KEY)
        return int(raw) if raw is not None else 0

    async def _bump(self) -> None:
        await self.redis.incr(REVISION_KEY)

    # -- reads -------------------------------------------------------------------------
    async def get(self, entry_id: str) -> Entry:
        doc = await self.entries.find_one({"_id": entry_id}, {"vectors": 0})
        if doc is None:
            raise UnknownEntry(f"no knowledge entry {entry_id!r}")
        return entry_from_json(doc)

    async def page(self, *, tag: str = "", skip: int = 0, limit: int = 50) -> tuple[list[Entry], int]:
        query: Document = {"tags": tag} if tag else {}
        cursor = self.entries.find(query, {"vectors": 0}).sort("_id", ASCENDING).skip(skip).limit(limit)
        found = [entry_from_json(d) async for d in cursor]
        return found, await self.entries.count_documents(query)

    async def versions(self, entry_id: str, limit: int = 20) -> list[Document]:
        cursor = self.history.find({"entry": entry_id}, {"_id": 0}).sort("version", DESCENDING).limit(limit)
        return [d async for d in cursor]

    async def indexed(self, encoder: SentenceEncoder) -> tuple[int, list[IndexedEntry]]:
        """The revision and all entries with vectors; missing or foreign vectors are
        computed and written back."""
        revision = await self.revision()
        items: list[IndexedEntry] = []
        stale: list[Entry] = []
        async for doc in self.entries.find({}):
            entry = entry_from_json(doc)
            raw = doc.get("vectors")
            vectors = from_bytes(bytes(raw), len(entry.forms())) if raw and doc.get("encoder") == encoder.name else None
            if vectors is None:
                stale.append(entry)
            else:
                items.append(IndexedEntry(entry, vectors))
        if stale:
            fresh = await self._vectors(stale)
            await self.entries.bulk_write(
                [UpdateOne({"_id": e.id, "version": e.version}, {"$set": {"vectors": to_bytes(v), "encoder": encoder.name}})
                 for e, v in zip(stale, fresh)],
                ordered=False,
            )
            items += [IndexedEntry(e, v) for e, v in zip(stale, fresh)]
        return revision, items

    async def _vectors(self, entries: Sequence[Entry]) -> list[Vectors]:
        texts = [q for e in entries for q in e.forms()]
        matrix = await self.encoder.encode(texts)
        out: list[Vectors] = []
        at = 0
        for e in entries:
            out.append(matrix[at : at + len(e.forms())])
            at += len(e.forms())
        return out

    # -- writes ------------------------------------------------------------------------
    async def save(self, entry: Entry, *, actor: str, expected_version: int | None = None) -> tuple[Entry, bool]:
        """Create or change one entry; (the stored entry, whether anything changed).

        Raises:
            VersionConflict: ``expected_version`` is given and the stored one differs,
                or another writer got in between.
        """
        current = await self.entries.find_one({"_id": entry.id}, {"vectors": 0})
        version = int(current["version"]) if current else 0
        if expected_version is not None and expected_version != version:
            raise VersionConflict(f"entry {entry.id!r} is at version {version}, not {expected_version}")
        if current is not None and entry_from_json(current).content() == entry.content():
            return entry_from_json(current), False
        (vectors,) = await self._vectors([entry])
        doc = self._document(entry, version + 1, actor, to_bytes(vectors))
        try:
            if current is None:
                await self.entries.insert_one(doc)
            else:
                result = await self.entries.replace_one({"_id": entry.id, "version": version}, doc)
                if result.matched_count != 1:
                    raise VersionConflict(f"entry {entry.id!r} changed while it was being saved")
        except DuplicateKeyError:
            raise VersionConflict(f"entry {entry.id!r} was created while it was being saved") from None
        await self.history.insert_one(self._history(doc))
        await self._bump()
        return entry_from_json(doc), True

    async def delete(self, entry_id: str, *, actor: str, expected_version: int | None = None) -> None:
        query: Document = {"_id": entry_id}
        if expected_version is not None:
            query["version"] = expected_version
        doc = await self.entries.find_one_and_delete(query, {"vectors": 0})
        if doc is None:
            if await self.entries.count_documents({"_id": entry_id}, limit=1):
                raise VersionConflict(f"entry {entry_id!r} is not at version {expected_version}")
            raise UnknownEntry(f"no knowledge entry {entry_id!r}")
        await self.history.insert_one(
            {"entry": entry_id, "version": int(doc["version"]) + 1, "deleted": True, "at": time.time(), "by": actor}
        )
        await self._bump()

    async def save_many(
        self, entries: Iterable[Entry], *, actor: str, progress: Callable[[int], None] | None = None
    ) -> ImportReport:
        """Create or change many entries in batches; a bad entry fails alone."""
        report = ImportReport()
        batch: list[Entry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= BATCH:
                await self._save_batch(batch, actor, report)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            await self._save_batch(batch, actor, report)
            if progress:
                progress(len(batch))
        if report.created or report.changed:
            await self._bump()
        return report

    async def _save_batch(self, batch: list[Entry], actor: str, report: ImportReport) -> None:
        unique = {e.id: e for e in batch}  # a file naming an id twice: the last one wins
        current = {
            d["_id"]: d async for d in self.entries.find({"_id": {"$in": list(unique)}}, {"vectors": 0})
        }
        todo: list[tuple[Entry, int]] = []
        for entry in unique.values():
            doc = current.get(entry.id)
            try:
                same = doc is not None and entry_from_json(doc).content() == entry.content()
            except InvalidEntry:
                same = False  # a stored document an older writer left malformed: replace it
            if same:
                report.unchanged += 1
            else:
                todo.append((entry, int(doc["version"]) if doc else 0))
        if not todo:
            return
        vectors = await self._vectors([e for e, _ in todo])
        docs = [self._document(e, v + 1, actor, to_bytes(vec)) for (e, v), vec in zip(todo, vectors)]
        ops = [
            UpdateOne({"_id": e.id, "version": v}, {"$set": d}, upsert=True) if v
            else UpdateOne({"_id": e.id}, {"$setOnInsert": d}, upsert=True)
            for (e, v), d in zip(todo, docs)
        ]
        failed: set[int] = set()
        try:
            await self.entries.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                failed.add(int(err["index"]))
                entry_id = todo[int(err["index"])][0].id
                reason = "changed by another writer" if err.get("code") == 11000 else str(err.get("errmsg", "write failed"))[:200]
                report.failed.append((entry_id, reason))
        written = [d for i, d in enumerate(docs) if i not in failed]
        for i, (_, v) in enumerate(todo):
            if i not in failed:
                if v:
                    report.changed += 1
                else:
                    report.created += 1
        if written:
            await self.history.insert_many([self._history(d) for d in written], ordered=False)

    def _document(self, entry: Entry, version: int, actor: str, vectors: bytes) -> Document:
        return {"_id": entry.id, **entry.content(), "version": version, "updated_at": time.time(),
                "updated_by": actor, "vectors": vectors, "encoder": self.encoder.name}

    @staticmethod
    def _history(doc: Document) -> Document:
        content = {k: doc[k] for k in CONTENT_FIELDS}
        return {"entry": doc["_id"], "version": doc["version"], "content": content, "at": doc["updated_at"], "by": doc["updated_by"]}
