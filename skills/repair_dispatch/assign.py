"""Repair dispatch: from a complete report to an engineer on the way, every step on the ticket.

Steps, each written to the ticket's timeline:

1. look up the customer's device and its contract (warranty, SLA) in MongoDB;
2. the likely causes and parts from past cases (:mod:`skills.repair_dispatch.cases`),
   carried on the ticket and the engineer's to-do; spare-part stock of those parts
   first, then the catalogue's likely parts, through the ERP connector, while
3. engineers are matched (:mod:`skills.repair_dispatch.matching`): best plus alternates;
4. an incident in ServiceNow and a DingTalk to-do for the engineer, concurrently;
5. a QR code (PNG in the data dir) that opens a signed verification link for the
   engineer's credentials.

A failed outside step does not fail the report: the ticket keeps the step as pending,
``attention`` tells the console an agent should look, and :meth:`RepairDispatch.retry_due`
(a background job, any number of workers, one lease per ticket) runs it again with
backoff. The customer is told plainly what is late. Status changes after the chat turn
(assigned after a retry, on the way, done) reach the customer through the notification
engine, in their preferred channel, detail and language.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from redis.asyncio import Redis

from bot.mongo import Document
from preferences.model import Importance, Notification, Topic
from skills.connectors.base import ConnectorError
from skills.connectors.erp import ErpConnector
from skills.connectors.registry import Connectors
from skills.connectors.servicenow import ServiceNowConnector
from skills.connectors.todo import TodoConnector
from skills.notifier import Notifier
from skills.repair_dispatch.cases import NO_DIAGNOSIS, CaseLibrary, Diagnosis, Resolution
from skills.repair_dispatch.catalog import Catalog, fault_category
from skills.repair_dispatch.tickets import Ticket, Tickets
from skills.repair_dispatch.matching import Match, MatchSettings, rank
from skills.repair_dispatch.visit_time import VisitWindow, parse_visit_time

log = logging.getLogger(__name__)

STEPS = ("stock", "incident", "todo")  # the outside steps, in the order they are retried
STATUSES = ("new", "assigned", "on_the_way", "done")
_LEASE_PREFIX = "kefu:repair:lease:"
_SECRET_KEY = "kefu:repair:verify_secret"


@dataclass(frozen=True, slots=True)
class RepairSettings:
    """``repair:`` in kefu.yml."""

    match: MatchSettings = field(default_factory=MatchSettings)
    retry_base_s: float = 30.0
    retry_max_s: float = 1800.0
    max_attempts: int = 12
    timezone: str = "Asia/Shanghai"
    verify_secret: str = ""

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> RepairSettings:
        m = MatchSettings()
        return cls(
            match=MatchSettings(
                min_nps=float(section.get("min_nps", m.min_nps)),
                speed_kmh=float(section.get("speed_kmh", m.speed_kmh)),
                minutes_per_job=float(section.get("minutes_per_job", m.minutes_per_job)),
                alternates=int(section.get("alternates", m.alternates)),
            ),
            retry_base_s=float(section.get("retry_base_s", 30.0)),
            retry_max_s=float(section.get("retry_max_s", 1800.0)),
            max_attempts=int(section.get("max_attempts", 12)),
            timezone=str(section.get("timezone", "Asia/Shanghai")),
            verify_secret=str(section.get("verify_secret", "")),
        )


@dataclass(frozen=True, slots=True)
class Known:
    """What the CRM knows of a chat customer before a dispatch: nothing, or the customer
    with the device they reported (if registered) and its contract."""

    customer: Document
    device: Document | None = None
    contract: Document | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One outside step of a dispatch: fields for the ticket, its timeline entry, success."""

    fields: Document
    entry: Document
    ok: bool


@dataclass(frozen=True, slots=True)
class DispatchOutcome:
    ticket: Ticket
    match: Match | None
    pending: tuple[str, ...]
    qr_path: str = ""


def _entry(step: str, detail: Any = None, *, ok: bool = True, at: float | None = None) -> Document:
    return {"at": at or time.time(), "step": step, "by": "bot", "ok": ok, "detail": detail if detail is not None else {}}


def _engineer_view(m: Match) -> Document:
    e = m.engineer
    return {
        "id": str(e["_id"]), "name": e.get("name", ""), "qualification": e.get("qualification", ""),
        "cert_no": e.get("cert_no", ""), "rating": e.get("rating"), "nps": e.get("nps"),
        "union_id": e.get("union_id", ""), "eta_min": m.eta_min, "distance_km": m.distance_km,
        "completed": int((e.get("completed") or {}).get("_cat", 0)),
    }


class RepairDispatch:
    def __init__(
        self,
        tickets: Tickets,
        catalog: Catalog,
        connectors: Connectors,
        notifier: Notifier,
        redis: Redis,
        *,
        qr_dir: Path,
        public_url: str,
        settings: RepairSettings | None = None,
        clock: Callable[[], float] = time.time,
        cases: CaseLibrary | None = None,
    ) -> None:
        self.tickets = tickets
        self.cases = cases
        self.catalog = catalog
        self.connectors = connectors
        self.notifier = notifier
        self.redis = redis
        self.qr_dir = qr_dir
        self.public_url = public_url.rstrip("/")
        self.settings = settings or RepairSettings()
        self.clock = clock
        self._secret: bytes | None = settings.verify_secret.encode() if settings and settings.verify_secret else None

    async def ensure_indexes(self) -> None:
        await self.catalog.ensure_indexes()
        if self.cases is not None:
            await self.cases.ensure_indexes()

    # -- what we know before dispatching -------------------------------------------------
    async def known(self, identity: str, model: str | None) -> Known | None:
        """CRM customer, device, contract of a chat identity (``None`` when unknown)."""
        customer = await self.catalog.customer_of(identity)
        if customer is None:
            return None
        device = await self.catalog.device(str(customer["_id"]), model)
        contract = await self.catalog.contract(str(device.get("contract_id", ""))) if device else None
        return Known(customer, device, contract)

    def _warranty(self, contract: Mapping[str, Any] | None) -> Document:
        if not contract:
            return {"covered": False}
        covered = float(contract.get("end", 0)) >= self.clock() and contract.get("kind") in ("maintenance", "warranty")
        return {"covered": covered, "contract_id": contract["_id"], "until": contract.get("end"), "sla_hours": contract.get("sla_hours")}

    # -- the dispatch --------------------------------------------------------------------
    async def dispatch(self, ticket: Mapping[str, Any], *, pref_customer: str) -> DispatchOutcome:
        """Run every step for a freshly opened ticket; never raises for an outside failure."""
        tid = ticket["_id"]
        if ticket.get("dispatch"):  # handled before (a reclaimed message): report what is there
            stored = await self.tickets.get(tid)
            assert stored is not None
            return DispatchOutcome(stored, None, tuple(stored["dispatch"].get("pending", ())), stored.get("qr_path", ""))
        known = await self.known(str(ticket["customer"]), str(ticket.get("device_model") or ""))
        customer, device, contract = (known.customer, known.device, known.contract) if known else (None, None, None)
        category = fault_category(str(ticket.get("fault", "")))
        warranty = self._warranty(contract)
        fields: Document = {
            "category": category, "crm_customer": customer["_id"] if customer else None,
            "device": {"serial": device["_id"], "model": device.get("model")} if device else None,
            "warranty": warranty, "pref_customer": pref_customer,
            "location": customer.get("location") if customer else None, "region": customer.get("region", "") if customer else "",
        }
        diagnosis = await self.diagnose(category, str(ticket.get("device_model") or ""))
        fields["diagnosis"] = diagnosis.to_json()
        timeline = [_entry("lookup", {"customer": fields["crm_customer"], "device": fields["device"], "warranty": warranty,
                                      "category": category, "diagnosis": fields["diagnosis"]})]
        location = customer.get("location") if customer else None

        stock_task = asyncio.create_task(
            self._stock(category, str(ticket.get("device_model") or ""), fields["region"], first=diagnosis.parts)
        )
        candidates = await self.catalog.engineers_for(category, self.settings.match.min_nps)
        ranked = rank(candidates, category, location, self.settings.match)
        stock = await stock_task
        timeline.append(stock.entry)
        fields.update(stock.fields)
        pending = [] if stock.ok else ["stock"]
        window = parse_visit_time(str(ticket.get("preferred_time") or ""), now=self.clock(), timezone=self.settings.timezone)
        match = await self._least_booked(ranked, window) if window is not None else (ranked[0] if ranked else None)
        if window is not None:
            fields["visit"] = {
                "slot": window.slot_key(), "start": window.start, "end": window.end, "day": window.day, "part": window.part,
                "hours": f"{self._clock_time(window.start)[-5:]}-{self._clock_time(window.end)[-5:]}",
            }
        if match is None:
            timeline.append(_entry("match", {"category": category, "candidates": len(candidates)}, ok=False))
            pending_all = pending
            fields["attention"] = {"reason": "no_engineer", "at": self.clock()}
        else:
            best = _engineer_view(match)
            best["completed"] = int((match.engineer.get("completed") or {}).get(category, 0))
            fields["engineer"] = best
            fields["alternates"] = [_engineer_view(m) | {"completed": int((m.engineer.get("completed") or {}).get(category, 0))} for m in [r for r in ranked if r is not match][: self.settings.match.alternates]]
            arrival = window.start if window is not None else self.clock() + match.eta_min * 60
            fields["eta"] = self._clock_time(arrival)
            fields["eta_min"] = match.eta_min
            timeline.append(_entry("match", {"engineer": best["id"], "alternates": [a["id"] for a in fields["alternates"]], "eta_min": match.eta_min, "visit": fields.get("visit")}))
            merged = {**dict(ticket), **fields}
            incident, todo = await asyncio.gather(self._incident(merged), self._todo(merged))
            fields.update(incident.fields)
            fields.update(todo.fields)
            timeline += [incident.entry, todo.entry]
            pending_all = pending + [s for s, step in (("incident", incident), ("todo", todo)) if not step.ok]
            if todo.ok:
                fields["status"] = "assigned"
                timeline.append(_entry("status", {"status": "assigned", "told": "chat"}))
        if pending_all:
            fields["attention"] = fields.get("attention") or {"reason": "outside_system", "steps": pending_all, "at": self.clock()}
            timeline.append(_entry("flagged", {"for": "agent", "pending": pending_all}))
        fields["dispatch"] = self._dispatch_state(pending_all, attempts=0)
        if match is not None:
            fields["qr_path"] = await self._qr(ticket, fields["engineer"])
            timeline.append(_entry("qr", {"path": fields["qr_path"]}))
        await self.tickets.record(tid, fields, timeline)
        stored = await self.tickets.get(tid)
        assert stored is not None
        return DispatchOutcome(stored, match, tuple(pending_all), fields.get("qr_path", ""))

    async def _least_booked(self, ranked: Sequence[Match], window: VisitWindow) -> Match | None:
        """The best-ranked engineer with the fewest visits already booked in the window."""
        if not ranked:
            return None
        booked = await self.tickets.booked(window.slot_key())
        return min(ranked, key=lambda m: booked.get(str(m.engineer["_id"]), 0))

    def _dispatch_state(self, pending: Sequence[str], attempts: int) -> Document:
        if not pending:
            return {"state": "done", "pending": [], "attempts": attempts}
        if attempts >= self.settings.max_attempts:
            return {"state": "failed", "pending": list(pending), "attempts": attempts}
        delay = min(self.settings.retry_max_s, self.settings.retry_base_s * 2**attempts)
        return {"state": "retrying", "pending": list(pending), "attempts": attempts, "next_at": self.clock() + delay}

    async def diagnose(self, category: str, model: str) -> Diagnosis:
        """Likely causes and parts from past cases (none without a case library)."""
        return NO_DIAGNOSIS if self.cases is None else await self.cases.diagnose(category, model)

    async def _stock(self, category: str, model: str, region: str, *, first: Sequence[str] = ()) -> Step:
        likely = await self.catalog.likely_parts(category, model)
        erp = self.connectors.get("erp", ErpConnector)
        # Parts past cases of this fault used come first, then the catalogue's guesses.
        names = {str(p["_id"]): str(p.get("name", "")) for p in likely}
        order = list(dict.fromkeys([*first, *names]))
        parts: list[dict[str, Any]] = [
            {"part_no": n, "name": names.get(n, ""), "qty": None} for n in order[: max(3, len(first))]
        ]
        if erp is None:
            return Step({"parts": parts}, _entry("stock", {"skipped": "no erp connector"}), True)
        try:
            stock = await erp.stock([p["part_no"] for p in parts], region)
        except ConnectorError as exc:
            return Step({"parts": parts}, _entry("stock", {"error": str(exc)}, ok=False), False)
        for p in parts:
            s = stock.get(p["part_no"])
            p["qty"], p["warehouse"] = (s.qty, s.warehouse) if s else (0, "")
        return Step({"parts": parts}, _entry("stock", {p["part_no"]: p["qty"] for p in parts}), True)

    async def _incident(self, t: Mapping[str, Any]) -> Step:
        sn = self.connectors.get("servicenow", ServiceNowConnector)
        if sn is None:
            return Step({}, _entry("incident", {"skipped": "no servicenow connector"}), True)
        eng = t.get("engineer") or {}
        try:
            inc = await sn.create_incident(
                {
                    "short_description": f"{t.get('device_model', '')}: {t.get('fault', '')}",
                    "description": f"{t.get('address', '')}\n{t.get('preferred_time', '')}\nparts: "
                    + ", ".join(f"{p['part_no']}×{p.get('qty')}" for p in t.get("parts") or []),
                    "category": t.get("category", ""), "correlation_id": str(t["_id"]), "u_kefu_ticket": t.get("number", ""),
                    "assigned_to": eng.get("name", ""), "caller_id": str(t.get("crm_customer") or t.get("customer", "")),
                    "urgency": "1" if (t.get("warranty") or {}).get("sla_hours") else "2",
                }
            )
        except ConnectorError as exc:
            return Step({}, _entry("incident", {"error": str(exc)}, ok=False), False)
        return Step({"incident": {"sys_id": inc.sys_id, "number": inc.number}}, _entry("incident", {"number": inc.number}), True)

    async def _todo(self, t: Mapping[str, Any]) -> Step:
        found = self.connectors.items.get("dingtalk_todo")
        todo = found if isinstance(found, TodoConnector) else None
        eng = t.get("engineer") or {}
        if todo is None:
            return Step({}, _entry("todo", {"skipped": "no to-do connector"}), True)
        try:
            task_id = await todo.create_task(
                executors=[str(eng.get("union_id", ""))],
                subject=f"维修 {t.get('number', '')} {t.get('device_model', '')} {t.get('fault', '')}",
                description=f"地址：{t.get('address', '')}\n时间：{t.get('preferred_time', '')}" + _likely(t),
                source_id=str(t["_id"]),
                due_ts=self.clock() + int(t.get("eta_min") or 60) * 60,
            )
        except ConnectorError as exc:
            return Step({}, _entry("todo", {"error": str(exc)}, ok=False), False)
        return Step({"todo_id": task_id}, _entry("todo", {"task_id": task_id, "engineer": eng.get("id")}), True)

    # -- retries -------------------------------------------------------------------------
    async def retry_due(self, limit: int = 50) -> int:
        """Run the pending steps of tickets whose retry is due; returns how many ran."""
        now = self.clock()
        due = await self.tickets.due_retries(now, limit)
        ran = 0
        for ticket in due:
            # One worker per ticket: the lease outlives one retry round by far.
            if not await self.redis.set(_LEASE_PREFIX + str(ticket["_id"]), "1", nx=True, px=60_000):
                continue
            try:
                await self._retry(ticket)
                ran += 1
            finally:
                await self.redis.delete(_LEASE_PREFIX + str(ticket["_id"]))
        return ran

    async def _retry(self, ticket: Ticket) -> None:
        fresh = await self.tickets.get(ticket["_id"])
        if fresh is None or (fresh.get("dispatch") or {}).get("state") != "retrying":
            return  # another worker finished it between our query and our lease
        pending = list(fresh["dispatch"]["pending"])
        fields: Document = {}
        timeline: list[Document] = []
        still: list[str] = []
        for step in pending:
            merged = {**fresh, **fields}
            if step == "stock":
                done = await self._stock(
                    str(fresh.get("category", "general")), str(fresh.get("device_model", "")), str(fresh.get("region", "")),
                    first=_diagnosed_parts(fresh),
                )
                if done.ok:
                    fields.update(done.fields)
            else:
                done = await (self._incident(merged) if step == "incident" else self._todo(merged))
                fields.update(done.fields)
            done.entry["detail"] = {**done.entry["detail"], "retry": int(fresh["dispatch"]["attempts"]) + 1}
            timeline.append(done.entry)
            if not done.ok:
                still.append(step)
        newly_assigned = "todo" in pending and "todo" not in still and fresh.get("status") == "new"
        if newly_assigned:
            fields["status"] = "assigned"
        fields["dispatch"] = self._dispatch_state(still, attempts=int(fresh["dispatch"]["attempts"]) + 1)
        if not still:
            fields["attention"] = None
            timeline.append(_entry("recovered", {"steps": pending}))
        elif fields["dispatch"]["state"] == "failed":
            timeline.append(_entry("gave_up", {"pending": still}, ok=False))
            fields["attention"] = {"reason": "retries_exhausted", "steps": still, "at": self.clock()}
        await self.tickets.record(fresh["_id"], fields, timeline)
        if newly_assigned:
            await self._notify_status({**fresh, **fields}, "assigned")

    # -- status changes ------------------------------------------------------------------
    async def set_status(
        self, ticket_id: str, status: str, *, by: str = "engineer", resolution: Resolution | None = None,
        tell: bool = True,
    ) -> Ticket | None:
        """Record a status change (on the way, done, ...) and tell the customer (unless
        ``tell`` is false: the chat turn answers them); a ticket closed with a resolution
        becomes a case of the library."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (known: {', '.join(STATUSES)})")
        ticket = await self.tickets.change_status(ticket_id, status, at=self.clock(), by=by)
        if ticket is not None and status == "done" and resolution is not None and self.cases is not None:
            await self.cases.learn(ticket, resolution, at=self.clock())
        if ticket is None:
            return await self.tickets.get(ticket_id)
        if tell:
            await self._notify_status(ticket, status)
        return ticket

    async def _notify_status(self, ticket: Mapping[str, Any], status: str) -> None:
        customer = str(ticket.get("pref_customer") or ticket["customer"])
        language = await self.notifier.language(customer)
        labels = _STATUS_LABELS.get(language, _STATUS_LABELS["en"])
        eng = ticket.get("engineer") or {}
        data = {
            "ticket_id": ticket.get("number", ""), "status": labels.get(status, status), "device": ticket.get("device_model", ""),
            "engineer": eng.get("name", ""), "eta": ticket.get("eta", "") if status in ("assigned", "on_the_way") else "",
            "ticket_open": status != "done",
            "progress": {"new": 10, "assigned": 40, "on_the_way": 70, "done": 100}.get(status),
            "timeline": [{"at": self._clock_time(e["at"]), "text": e["step"]} for e in (ticket.get("timeline") or [])[-5:]],
        }
        importance = Importance.HIGH if status in ("on_the_way", "done") else Importance.NORMAL
        decision = await self.notifier.notify(
            Notification(customer, Topic.REPAIR, importance, data, key=f"{ticket['_id']}:status:{status}")
        )
        await self.tickets.record(
            ticket["_id"], {}, [_entry("notified", {"status": status, "action": decision.action.value if decision else "no_engine"})]
        )

    # -- engineer verification -----------------------------------------------------------
    async def secret(self) -> bytes:
        """The verification links' key: configured, or one random key shared via Redis."""
        if self._secret is None:
            await self.redis.set(_SECRET_KEY, secrets.token_hex(32), nx=True)
            raw = await self.redis.get(_SECRET_KEY)
            self._secret = (raw.encode() if isinstance(raw, str) else bytes(raw)) if raw else secrets.token_bytes(32)
        return self._secret

    async def verify_url(self, ticket_id: str, engineer_id: str) -> str:
        sig = hmac.new(await self.secret(), f"{engineer_id}|{ticket_id}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self.public_url}/verify/engineer?" + urlencode({"e": engineer_id, "t": ticket_id, "sig": sig})

    async def check_signature(self, ticket_id: str, engineer_id: str, sig: str) -> bool:
        want = hmac.new(await self.secret(), f"{engineer_id}|{ticket_id}".encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(want, sig)

    async def _qr(self, ticket: Mapping[str, Any], engineer: Mapping[str, Any]) -> str:
        url = await self.verify_url(str(ticket["_id"]), str(engineer["id"]))
        path = self.qr_dir / f"{ticket.get('number') or hashlib.sha1(str(ticket['_id']).encode()).hexdigest()}.png"
        await asyncio.to_thread(_write_qr, url, path)  # PNG encoding is CPU work
        return str(path)

    def _clock_time(self, ts: float) -> str:
        from preferences.render import local_time

        return local_time(ts, self.settings.timezone, "%m-%d %H:%M")


def qr_png(data: str) -> bytes:
    """A QR code of ``data`` as PNG bytes (CPU work: call it in a thread)."""
    import io

    import qrcode  # type: ignore[import-untyped]
    from qrcode.image.pure import PyPNGImage  # type: ignore[import-untyped]

    out = io.BytesIO()
    qrcode.make(data, image_factory=PyPNGImage, box_size=6, border=2).save(out)
    return out.getvalue()


def _write_qr(data: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Its own temporary name: a message handled twice at once renders the same QR twice.
    tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(qr_png(data))
    tmp.replace(path)


_STATUS_LABELS = {
    "zh": {"new": "已登记", "assigned": "已派单", "on_the_way": "工程师已出发", "done": "维修完成"},
    "en": {"new": "registered", "assigned": "engineer assigned", "on_the_way": "engineer on the way", "done": "repair done"},
}


def _diagnosed_parts(t: Mapping[str, Any]) -> tuple[str, ...]:
    diagnosis: Mapping[str, Any] = t.get("diagnosis") or {}
    return tuple(str(p) for p in diagnosis.get("parts", ()))


def _likely(t: Mapping[str, Any]) -> str:
    """The to-do's lines on what past cases suggest."""
    diagnosis = t.get("diagnosis") or {}
    causes = "、".join(str(c["cause"]) for c in diagnosis.get("causes", []))
    parts = "、".join(str(p) for p in diagnosis.get("parts", []))
    return (f"\n可能原因：{causes}" if causes else "") + (f"\n可能用到的备件：{parts}" if parts else "")
