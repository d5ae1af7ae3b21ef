"""Data rights: export everything we hold about a customer, or erase it.

``export_my_data`` collects the customer's record from every collection that holds it
(profile and preferences, their history, consents, conversations and messages with
voice transcripts, tickets (read through ``TicketRecords``, the tickets' owner), notifications and
digests), masks phone numbers and the configured fields, writes JSON, CSV and Parquet
into one ZIP and sends the customer a signed, time-limited link to it through their
preferred channel. The ZIP waits in ``pref_exports`` until the link expires.

``erase`` deletes the customer's documents, anonymises tickets (kept for warranty
accounting, stripped of everything but ``ticket_keep_fields``), removes their entries
from Redis (due-list, pending confirmations, queued stream entries, any key naming
them) and keeps an audit record that says an erasure happened, by whom and how much
was removed, but nothing about the person.

Every request that arrives or moves on (requested, building, sent, erased) is announced
on :data:`CHANGED`, so the console's data-requests page follows it in every web process.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import io
import json
import re
import secrets
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.announce import Announcer
from bot.mongo import Document, find_by_ids, newest_first, update_and_get
from bot.signing import shared_key
from bot.store import channel_identity
from preferences.clock import Clock, SystemClock
from preferences.engine import NotificationEngine
from preferences.errors import ConfirmationInvalid, LinkInvalid
from preferences.model import Importance, Topic
from preferences.store import CHANGED_KEY, PreferenceStore


DEFAULT_MASK_FIELDS = ("phone", "mobile", "tel", "telephone", "id_number", "id_card")
DEFAULT_TICKET_KEEP = ("status", "product", "model", "category", "created_at", "closed_at")
#: What an export holds, one section each, in the order the data-usage notice lists them.
EXPORT_SECTIONS = (
    "profile", "crm_profile", "preferences", "preference_history", "consents", "conversations", "messages", "devices",
    "contracts", "renewal_requests", "renewal_reminders", "tickets", "complaint_cases", "orders", "reviews", "coupons",
    "notifications", "portal_audit", "portal_members", "notification_rules",
)
#: A chat request's link waits for its acknowledgement this long at most.
ACK_WAIT_S = 60.0
ERASE_CODE_PREFIX = "kefu:prefs:erase:"
SECRET_KEY = "kefu:prefs:link_secret"
#: Redis channel a data request's arrival or progress is announced on.
CHANGED = "kefu:data-requests:changed"
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_value(value: str) -> str:
    """138****5678 for a phone number; otherwise first and last character kept."""
    if re.fullmatch(r"[\d\s+\-()]{7,}", value):
        digits = re.sub(r"\D", "", value)
        return digits[:3] + "****" + digits[-4:]
    if len(value) <= 2:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask(obj: Any, fields: frozenset[str]) -> Any:
    """A copy of ``obj`` with ``fields`` masked wherever they occur and phone numbers
    masked inside every string."""
    if isinstance(obj, Mapping):
        return {
            k: (mask_value(str(v)) if k.lower() in fields and v not in (None, "") else mask(v, fields))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [mask(v, fields) for v in obj]
    if isinstance(obj, str):
        return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", obj)
    return obj


EXPORT_FORMATS = ("json", "csv", "parquet")


def build_zip(sections: Mapping[str, list[Document]], formats: Collection[str] = EXPORT_FORMATS) -> bytes:
    """JSON (``data.json``), one CSV and one Parquet file per section, in one ZIP;
    ``formats`` leaves out the others.

    CPU and pyarrow work: call it in a thread.
    """
    return export_files(zipfile.ZipFile, sections, formats)


def export_files(open_zip: Callable[..., zipfile.ZipFile], sections: Mapping[str, list[Document]], formats: Collection[str]) -> bytes:
    """The export written through ``open_zip`` (``zipfile.ZipFile`` or an encrypting one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    with open_zip(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if "json" in formats:
            zf.writestr("data.json", json.dumps(sections, ensure_ascii=False, indent=2, default=str))
        for name, rows in sections.items():
            if "csv" not in formats and "parquet" not in formats:
                break
            flat = [_flatten(r) for r in rows]
            columns = sorted({k for r in flat for k in r})
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns)
            writer.writeheader()
            writer.writerows(flat)
            if "csv" in formats:
                # UTF-8 with BOM: Excel on Chinese Windows opens it without mojibake.
                zf.writestr(f"csv/{name}.csv", "\ufeff" + text.getvalue())
            if "parquet" in formats:
                # Every column as string: sections are heterogeneous documents, and a
                # customer's copy needs to be readable, not typed for analytics.
                table = pa.table({c: pa.array([r.get(c) for r in flat], type=pa.string()) for c in columns})
                out = io.BytesIO()
                pq.write_table(table, out)
                zf.writestr(f"parquet/{name}.parquet", out.getvalue())
    return buf.getvalue()


def _flatten(row: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k, v in row.items():
        if v is None:
            out[k] = None
        elif isinstance(v, (dict, list, tuple)):
            out[k] = json.dumps(v, ensure_ascii=False, default=str)
        else:
            out[k] = str(v)
    return out


class TicketRecords(Protocol):
    """What data rights need of the tickets collection's owner (the repair skill's ``Tickets``)."""

    async def of_customers(self, customers: Sequence[str]) -> list[Document]: ...

    async def anonymise(self, customers: Sequence[str], *, keep: Sequence[str], marker: str) -> int: ...


class DataRights:
    """Export and erasure of one customer's data."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        redis: Redis,
        prefs: PreferenceStore,
        engine: NotificationEngine,
        tickets: TicketRecords,
        *,
        secret: bytes | None,
        public_url: str,
        clock: Clock | None = None,
        mask_fields: Iterable[str] = DEFAULT_MASK_FIELDS,
        ticket_keep_fields: Iterable[str] = DEFAULT_TICKET_KEEP,
        link_ttl_s: float = 72 * 3600,
        streams: Sequence[str] = (),
        retention_days: int = 365,
    ) -> None:
        self.db = db
        self.redis = redis
        self.prefs = prefs
        self.engine = engine
        self.tickets = tickets
        self._secret = secret
        self.public_url = public_url.rstrip("/")
        self.clock = clock or SystemClock()
        self.mask_fields = frozenset(f.lower() for f in mask_fields)
        self.ticket_keep = tuple(ticket_keep_fields)
        self.link_ttl_s = link_ttl_s
        self.streams = tuple(streams)
        self.retention_days = retention_days
        self.exports = db["pref_exports"]
        self.erasures = db["pref_erasures"]
        self.announcer = Announcer(redis, CHANGED)

    # -- who the customer is, everywhere ------------------------------------------------
    async def identities(self, customer_id: str) -> tuple[set[str], set[str]]:
        """(ids in ``customer`` fields, raw platform recipients) of this customer."""
        doc = await self.prefs.get(customer_id)
        ids = {customer_id}
        recipients: set[str] = set()
        prefs = await self.prefs.effective_of(doc)
        for addr in prefs.addresses.values():
            account = self.engine.delivery.account(addr.channel, addr.account)
            ids.add(channel_identity(addr.channel, account, addr.recipient))
            recipients.add(addr.recipient)
        return ids, recipients

    async def collect(self, customer_id: str) -> dict[str, list[Document]]:
        """Everything held about the customer, masked, as JSON-ready sections."""
        doc = await self.prefs.get(customer_id)
        ids, _ = await self.identities(customer_id)
        idl = list(ids)
        names = set(await self.db.list_collection_names())

        async def rows(coll: str, query: Document, drop: Sequence[str] = ()) -> list[Document]:
            if coll not in names:
                return []
            proj = {f: 0 for f in drop} or None
            return [d async for d in self.db[coll].find(query, projection=proj).sort("_id", 1)]

        # The CRM side: who they are to the business, and what the business did for them.
        crm = await rows("crm_customers", {"identities": {"$in": idl}})
        crm_ids = [c["_id"] for c in crm]
        contracts = await rows("contracts", {"customer": {"$in": crm_ids}})
        orders = await rows("orders", {"customer": {"$in": crm_ids}})
        reviews = await rows(
            "reviews", {"$or": [{"order_id": {"$in": [o["_id"] for o in orders]}}, {"conversation": {"$in": idl}}]}
        )
        sections: dict[str, list[Document]] = {
            "profile": [{"customer_id": customer_id, **doc.get("profile", {}), "segments": doc.get("segments", [])}],
            "crm_profile": crm,
            "preferences": [await self.prefs.effective_layer(customer_id)],
            "preference_history": await rows("pref_history", {"subject": customer_id}),
            "consents": await rows("pref_consents", {"customer": customer_id}),
            "conversations": await rows("conversations", {"customer": {"$in": idl}}),
            # raw: the platform's original payload, a duplicate of the fields above.
            "messages": await rows("messages", {"customer": {"$in": idl}}, drop=("raw",)),
            "devices": await rows("devices", {"customer": {"$in": crm_ids}}),
            "contracts": contracts,
            "renewal_requests": await rows("renewal_opportunities", {"customer": {"$in": crm_ids}}),
            "renewal_reminders": await rows("renewal_reminders", {"contract": {"$in": [c["_id"] for c in contracts]}}),
            # Tickets whole: their timeline is what happened on the customer's behalf.
            "tickets": await self.tickets.of_customers(idl),
            "complaint_cases": await rows("complaint_cases", {"customer": {"$in": idl}}),
            "orders": orders,
            "reviews": reviews,
            "coupons": [{"for": r["_id"], **r["coupon"]} for r in reviews if r.get("coupon")],
            "notifications": await rows("notifications", {"customer": customer_id}),
            # What the customer and their colleagues did in the portal, and their own rules.
            "portal_audit": await rows("portal_audit", {"customer": customer_id}),
            "portal_members": await rows("portal_members", {"customer": customer_id}),
            "notification_rules": await rows("pref_rules", {"customer": customer_id}),
        }
        return {k: [mask(_jsonable(r), self.mask_fields) for r in sections[k]] for k in EXPORT_SECTIONS}

    async def counts(self, customer_id: str) -> dict[str, int]:
        """How many records each section of :meth:`collect` holds, without reading them."""
        ids, _ = await self.identities(customer_id)
        idl = list(ids)
        queries: dict[str, tuple[str, Document]] = {
            "preference_history": ("pref_history", {"subject": customer_id}),
            "consents": ("pref_consents", {"customer": customer_id}),
            "conversations": ("conversations", {"customer": {"$in": idl}}),
            "messages": ("messages", {"customer": {"$in": idl}}),
            "voice_notes": ("messages", {"customer": {"$in": idl}, "kind": "voice"}),
            "tickets": ("tickets", {"customer": {"$in": idl}}),
            "notifications": ("notifications", {"customer": customer_id}),
            "portal_audit": ("portal_audit", {"customer": customer_id}),
            "portal_members": ("portal_members", {"customer": customer_id}),
            "notification_rules": ("pref_rules", {"customer": customer_id}),
        }
        found = await asyncio.gather(*(self.db[coll].count_documents(q) for coll, q in queries.values()))
        return {"profile": 1, **dict(zip(queries, found))}

    async def voice_notes(self, customer_id: str, limit: int = 50) -> list[Document]:
        """The customer's voice notes, newest first: where the audio is, what transcribed it."""
        ids, _ = await self.identities(customer_id)
        fields = {"channel": 1, "ts": 1, "media": 1, "transcript": 1}
        each = await asyncio.gather(*(
            newest_first(self.db["messages"], {"customer": i, "kind": "voice"}, field="ts", now=self.clock.now(), limit=limit, projection=fields)
            for i in sorted(ids)
        ))
        notes = sorted((d for found in each for d in found), key=lambda d: float(d.get("ts") or 0), reverse=True)[:limit]
        # Whether the audio itself is kept here (bot.voice_archive), not only the platform's reference.
        kept = await find_by_ids(self.db["voice_notes"], [d["_id"] for d in notes], projection={"at": 1})
        for d in notes:
            d["audio_kept"] = d["_id"] in kept
        return notes

    async def delete_audio(self, customer_id: str, message_id: str) -> bool:
        """Forget a voice note's audio (the copy kept at arrival, its platform reference and any cached copy); the
        transcript stays with the conversation. False when it is not the customer's."""
        ids, _ = await self.identities(customer_id)
        res = await self.db["messages"].update_one(
            {"_id": message_id, "customer": {"$in": list(ids)}, "kind": "voice"},
            {"$set": {"media.media_id": None, "media.url": None, "media.audio_deleted_at": self.clock.now()}},
        )
        if res.matched_count == 0:
            return False
        # The copy kept at arrival (bot.voice_archive) is the audio itself, not a reference.
        await self.db["voice_notes"].delete_one({"_id": message_id, "customer": {"$in": list(ids)}})
        async for key in self.redis.scan_iter(match=f"kefu:*media*{_glob_escape(message_id)}*", count=1000):
            await self.redis.delete(key)
        return True

    async def export_zip(self, customer_id: str) -> bytes:
        sections = await self.collect(customer_id)
        return await asyncio.to_thread(build_zip, sections)

    async def export_my_data(self, customer_id: str, *, via: str = "api") -> tuple[str, str]:
        """Build the export, store it and send the link; returns ``(export_id, url)``."""
        export_id = uuid.uuid4().hex
        await self.exports.insert_one({"_id": export_id, "customer": customer_id, "created_at": self.clock.now(), "via": via, "status": "building"})
        self.announcer.changed()
        return export_id, await self._build_and_send(export_id, customer_id)

    async def request_export(self, customer_id: str, *, via: str, after: str) -> str:
        """Queue an export whose link is sent only once message ``after`` is handled, so
        that the customer reads the acknowledgement of their request before the link
        (see :meth:`send_requested`). Returns the export id."""
        export_id = uuid.uuid4().hex
        await self.exports.insert_one(
            {"_id": export_id, "customer": customer_id, "created_at": self.clock.now(), "via": via, "status": "requested", "after": after}
        )
        self.announcer.changed()
        return export_id

    async def send_requested(self, handled: Callable[[str], Awaitable[bool]], *, lease_s: float = 300.0) -> bool:
        """Build and send one requested export whose acknowledgement is out (or that has
        waited :data:`ACK_WAIT_S`); whether one was sent (call again at once then)."""
        now = self.clock.now()
        async for doc in self.exports.find(
            {"$or": [{"status": "requested"}, {"status": "building", "lease_until": {"$lt": now}}]}, projection={"zip": 0}
        ).sort("created_at", 1).limit(20):
            if doc.get("after") and now - float(doc["created_at"]) < ACK_WAIT_S and not await handled(str(doc["after"])):
                continue
            claimed = await update_and_get(
                self.exports, {"_id": doc["_id"], "status": doc["status"], "lease_until": doc.get("lease_until")},
                {"$set": {"status": "building", "lease_until": now + lease_s}},
            )
            if claimed is not None:
                self.announcer.changed()
                await self._build_and_send(str(doc["_id"]), str(doc["customer"]))
                return True
        return False

    async def _build_and_send(self, export_id: str, customer_id: str) -> str:
        data = await self.export_zip(customer_id)
        expires = self.clock.now() + self.link_ttl_s
        await self.exports.update_one({"_id": export_id}, {"$set": {"zip": Binary(data), "expires_at": expires, "status": "sent"}})
        self.announcer.changed()
        url = f"{self.public_url}/api/preferences/exports/{await self.sign(export_id, expires)}"
        prefs = await self.prefs.effective(customer_id)
        await self.engine.notify(
            customer_id,
            Topic.ACCOUNT,
            Importance.CRITICAL,  # the customer just asked for it: not a digest item
            {"url": url, "expires_at": expires, "timezone": prefs.timezone},
            key=f"export:{export_id}",
            template="export_ready",
        )
        return url

    async def secret(self) -> bytes:
        """The link-signing key: configured, or one random key shared through Redis.

        Fetched on first use rather than at startup so that the gateway starts (and
        answers 503 on its webhooks) while Redis is down.
        """
        if self._secret is None:
            self._secret = await shared_key(self.redis, SECRET_KEY)
            if self._secret is None:
                raise LinkInvalid("no link-signing key available")
        return self._secret

    async def sign(self, export_id: str, expires: float) -> str:
        body = f"{export_id}.{int(expires)}"
        mac = hmac.new(await self.secret(), body.encode(), hashlib.sha256).digest()
        return body + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    async def verify(self, token: str) -> str:
        """The export id a token names; raises LinkInvalid when forged or expired."""
        try:
            export_id, expires, mac = token.split(".")
            expected = (await self.sign(export_id, float(expires))).rsplit(".", 1)[1]
        except ValueError:
            raise LinkInvalid("malformed download link") from None
        if not hmac.compare_digest(mac, expected):
            raise LinkInvalid("download link signature does not match")
        if float(expires) < self.clock.now():
            raise LinkInvalid("download link has expired")
        return export_id

    async def download(self, token: str) -> tuple[str, bytes]:
        """``(customer_id, zip bytes)`` for a valid link."""
        export_id = await self.verify(token)
        doc = await self.exports.find_one({"_id": export_id})
        if doc is None:
            raise LinkInvalid("export no longer exists")
        return str(doc["customer"]), bytes(doc["zip"])

    async def requests(self, limit: int = 100) -> list[Document]:
        """Export and erasure requests, newest first, without the exported data."""
        out: list[Document] = []
        now = self.clock.now()
        async for e in self.exports.find({}, projection={"zip": 0}).sort("created_at", -1).limit(limit):
            # Not sent yet: requested (waiting for its acknowledgement) or being built.
            status = str(e.get("status", "")) if e.get("status") in ("requested", "building") else (
                "expired" if float(e.get("expires_at") or 0) < now else "ready")
            out.append({"kind": "export", "id": e["_id"], "customer": e.get("customer"), "at": e.get("created_at"), "via": e.get("via", ""),
                        "status": status, "expires_at": e.get("expires_at")})
        async for e in self.erasures.find({}).sort("at", -1).limit(limit):
            out.append({"kind": "erasure", "id": e["_id"], "customer": "", "at": e.get("at"), "via": e.get("via", ""), "status": "done",
                        "actor": e.get("actor", ""), "removed": e.get("removed", {})})
        return sorted(out, key=lambda r: -float(r["at"] or 0))[:limit]

    def notice(self, language: str) -> str:
        """The data-usage notice: what is stored, why, for how long."""
        return self.engine.renderer.render("data_notice", language, retention_days=self.retention_days, sections=EXPORT_SECTIONS)

    # -- erasure -----------------------------------------------------------------------
    async def request_erasure(self, customer_id: str, ttl_s: int = 900) -> str:
        """A confirmation code that :meth:`confirm_erasure` needs within ``ttl_s``."""
        await self.prefs.get(customer_id)
        code = secrets.token_urlsafe(8)
        await self.redis.set(ERASE_CODE_PREFIX + customer_id, code, ex=ttl_s)
        return code

    async def confirm_erasure(self, customer_id: str, code: str, *, actor: str, via: str) -> Document:
        stored = await self.redis.get(ERASE_CODE_PREFIX + customer_id)
        if stored is None or not hmac.compare_digest(stored if isinstance(stored, bytes) else str(stored).encode(), code.encode()):
            raise ConfirmationInvalid("confirmation code unknown or expired")
        return await self.erase(customer_id, actor=actor, via=via)

    async def erase(self, customer_id: str, *, actor: str, via: str) -> Document:
        """Erase or anonymise the customer everywhere; returns the audit record."""
        ids, recipients = await self.identities(customer_id)
        idl = list(ids)
        names = set(await self.db.list_collection_names())
        erasure_id = uuid.uuid4().hex
        counts: dict[str, int] = {}

        async def delete(coll: str, query: Document) -> None:
            if coll in names:
                res = await self.db[coll].delete_many(query)
                counts[coll] = counts.get(coll, 0) + res.deleted_count

        # Due-list members first: they name the digests and notifications deleted below.
        members = [f"d|{d['_id']}" async for d in self.db["pref_digests"].find({"customer": customer_id}, {"_id": 1})]
        members += [f"h|{d['_id']}" async for d in self.db["notifications"].find({"customer": customer_id}, {"_id": 1})]
        await self.engine.schedule.remove(members)
        await delete("pref_customers", {"_id": customer_id})
        counts["pref_segment_samples"] = await self.prefs.segment_samples.forget_customer(customer_id)
        await delete("pref_history", {"subject": customer_id})
        await delete("pref_consents", {"customer": customer_id})
        await delete("notifications", {"customer": customer_id})
        await delete("pref_digests", {"customer": customer_id})
        await delete("pref_digest_outcomes", {"_id": {"$in": [m[2:] for m in members if m.startswith("d|")]}})
        await delete("pref_exports", {"customer": customer_id})
        await delete("pref_rules", {"customer": customer_id})
        await delete("portal_members", {"customer": customer_id})
        await delete("portal_exports", {"customer": customer_id})
        await delete("portal_audit", {"customer": customer_id})
        await delete("messages", {"customer": {"$in": idl}})
        await delete("voice_notes", {"customer": {"$in": idl}})  # their audio (bot.voice_archive)
        await delete("conversations", {"customer": {"$in": idl}})
        await delete("conversations", {"_id": {"$in": idl}})
        if recipients:
            pattern = "|".join(re.escape(r) for r in sorted(recipients | ids))
            await delete("dead_letters", {"payload": {"$regex": pattern}})
        counts["tickets_anonymised"] = await self.tickets.anonymise(idl, keep=self.ticket_keep, marker=f"erased:{erasure_id}")
        counts["redis"] = await self._erase_redis(customer_id, ids | recipients)
        audit: Document = {"_id": erasure_id, "at": self.clock.now(), "actor": actor, "via": via, "removed": counts}
        # The actor is the customer themself when the request came from chat: keep no id.
        if actor in ids:
            audit["actor"] = "customer"
        await self.erasures.insert_one(audit)
        self.announcer.changed()
        return audit

    async def _erase_redis(self, customer_id: str, needles: set[str]) -> int:
        removed = 0
        encoded = [n.encode() for n in needles if n]
        for stream in self.streams:
            # Entries stay in a stream after they are acknowledged: delete the ones
            # carrying the customer (sent replies, queued messages).
            last = "-"
            while True:
                batch = await self.redis.xrange(stream, min=last, max="+", count=1000)
                if not batch:
                    break
                doomed = [
                    eid
                    for eid, fields in batch
                    if eid is not None and any(_has(v, encoded) for v in (fields or {}).values())
                ]
                if doomed:
                    removed += int(await self.redis.xdel(stream, *doomed))
                if len(batch) < 1000:
                    break
                last_id = batch[-1][0]
                last = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
            delayed = stream + ":delayed"
            members = [m for m in await self.redis.zrange(delayed, 0, -1) if isinstance(m, (bytes, str)) and _has(m, encoded)]
            if members:
                removed += int(await self.redis.zrem(delayed, *members))
        # The preference store's change note names the customer (its records are gone).
        removed += int(await self.redis.zrem(CHANGED_KEY, customer_id))
        # Caches and markers of any component whose key names the customer.
        for needle in needles:
            async for key in self.redis.scan_iter(match=f"*{_glob_escape(needle)}*", count=1000):
                removed += int(await self.redis.delete(key))
        return removed


def _has(value: bytes | str, needles: list[bytes]) -> bool:
    raw = value if isinstance(value, bytes) else value.encode()
    return any(n in raw for n in needles)


def _glob_escape(s: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", s)


def _jsonable(doc: Mapping[str, Any]) -> Document:
    out: Document = json.loads(json.dumps(doc, ensure_ascii=False, default=str))
    return out
