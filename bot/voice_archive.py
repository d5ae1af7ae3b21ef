"""Voice notes' audio kept in the store, from the moment they arrive.

Platforms keep a customer's voice note only for a while (WeChat's temporary media: three
days), and agents listen to notes long after that, in a claimed conversation or a search.
So the worker keeps the audio as it fetches it (:class:`bot.voice.VoiceStep`), and the
console plays it from here. One document per note, keyed by the message's key, with the
platform's bytes as they came (AMR, SILK...: a tenth of the size of the WAV a browser
plays; the console converts when played). A note is a few kilobytes to a few hundred:
far below a document's 16 MB, so a plain binary field serves and GridFS is not needed;
``max_bytes`` bounds each note and ``keep_days`` how long any is kept.

The settings are the ``voice_notes:`` section of kefu.yml::

    voice_notes:
      keep_days: 90          # 0: not kept (played from the platform while it has them)
      max_bytes: 2097152     # a larger note is not kept
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from bot.errors import ConfigError
from bot.logs import ref
from bot.mongo import Document
from bot.tasks import Job

log = logging.getLogger(__name__)

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class VoiceArchiveSettings:
    keep_days: float = 90.0
    max_bytes: int = 2 * 1024 * 1024
    purge_interval_s: float = 3600.0

    @property
    def enabled(self) -> bool:
        return self.keep_days > 0

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> VoiceArchiveSettings:
        known = {"keep_days", "max_bytes", "purge_interval_s"}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"voice_notes: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
        d = cls()
        try:
            settings = cls(
                keep_days=float(section.get("keep_days", d.keep_days)),
                max_bytes=int(section.get("max_bytes", d.max_bytes)),
                purge_interval_s=float(section.get("purge_interval_s", d.purge_interval_s)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"voice_notes: {exc}") from exc
        # A document holds at most 16 MB; the margin is for the other fields.
        if settings.keep_days < 0 or not 0 < settings.max_bytes <= 15 * 1024 * 1024 or settings.purge_interval_s <= 0:
            raise ConfigError("voice_notes: keep_days >= 0, 0 < max_bytes <= 15 MB, purge_interval_s > 0")
        return settings


@dataclass(frozen=True, slots=True)
class StoredVoice:
    audio: bytes
    format: str  # what the platform said, e.g. "amr"; empty when it did not say
    at: float


class VoiceArchive:
    """Owns the ``voice_notes`` collection."""

    def __init__(self, db: AsyncDatabase[Document], settings: VoiceArchiveSettings) -> None:
        self.notes = db["voice_notes"]
        self.settings = settings

    async def ensure_indexes(self) -> None:
        # By customer: an erasure deletes their notes (preferences.data_rights).
        await self.notes.create_indexes([IndexModel([("at", ASCENDING)]), IndexModel([("customer", ASCENDING)])])

    async def keep(self, key: str, audio: bytes, format: str, *, customer: str, at: float | None = None) -> bool:
        """Keep one note's audio; False when it is not kept (too large, or keeping is off).

        ``customer`` is the sender's channel identity; ``at`` is when the note came (default: now); its age, for ``keep_days``, counts
        from then. A note handled twice (a reclaimed message) keeps its first copy.
        """
        if not self.settings.enabled or not audio:
            return False
        if len(audio) > self.settings.max_bytes:
            log.info("voice note %s not kept: %d bytes, above voice_notes.max_bytes", ref(key), len(audio))
            return False
        doc = {"audio": audio, "format": format, "bytes": len(audio), "customer": customer, "at": time.time() if at is None else at}
        await self.notes.update_one({"_id": key}, {"$setOnInsert": doc}, upsert=True)
        return True

    async def get(self, key: str) -> StoredVoice | None:
        doc = await self.notes.find_one({"_id": key})
        if doc is None:
            return None
        return StoredVoice(audio=bytes(doc["audio"]), format=str(doc.get("format") or ""), at=float(doc["at"]))

    async def purge(self, *, now: float | None = None) -> int:
        """Forget notes older than ``keep_days``; how many went."""
        cutoff = (time.time() if now is None else now) - self.settings.keep_days * DAY_S
        result = await self.notes.delete_many({"at": {"$lt": cutoff}})
        if result.deleted_count:
            log.info("forgot %d voice notes older than %g days", result.deleted_count, self.settings.keep_days)
        return result.deleted_count

    def jobs(self) -> list[Job]:
        if not self.settings.enabled:
            return []
        return [Job("voice-notes-purge", self.settings.purge_interval_s, self.purge)]

