"""Data a portal customer has: repair tickets, CRM contracts, voice notes, through their owners."""

from __future__ import annotations

import time
import uuid
from typing import Any

from bot.store import channel_identity
from bot.voice_archive import VoiceArchive, VoiceArchiveSettings
from tests.portal.conftest import PortalRig

DAY = 86_400.0


async def ticket(rig: PortalRig, openid: str, customer: str, *, status: str = "assigned", fault: str = "不制冷") -> dict[str, Any]:
    """A ticket reported from chat and dispatched to an engineer, as the repair skill leaves it."""
    tickets = rig.deps.tickets
    opened = await tickets.open(
        customer=channel_identity("wechat", "demo", openid), conversation=f"wechat:demo:{openid}",
        source_message=f"wechat:demo:{uuid.uuid4().hex}", fields={"device_model": "XK-8800", "fault": fault, "address": "上海 B 栋"},
    )
    now = time.time()
    await tickets.record(
        opened["_id"],
        {"pref_customer": customer, "status": status, "eta": "14:30",
         "engineer": {"id": "E-7", "name": "王师傅", "qualification": "高级制冷工", "cert_no": "ZL-2024-77"}},
        [{"at": now, "step": "matched", "by": "bot", "ok": True, "detail": {}},
         {"at": now, "step": "status", "by": "bot", "ok": True, "detail": {"status": status}}],
    )
    found = await tickets.get(opened["_id"])
    assert found is not None
    return dict(found)


async def contracts(rig: PortalRig, openid: str, customer: str, crm_id: str, *, amount: float = 1_250_000) -> list[str]:
    """A CRM customer behind the chat identity with one contract ending in 30 days."""
    db = rig.deps.db
    await db["crm_customers"].insert_one(
        {"_id": crm_id, "name": "上海某制造", "identities": [channel_identity("wechat", "demo", openid)], "pref_customer": customer, "language": "zh"}
    )
    now = time.time()
    ids = [f"K-{crm_id}-1", f"K-{crm_id}-2"]
    await db["contracts"].insert_many([
        {"_id": ids[0], "customer": crm_id, "product": "XK-8800 全保维保", "start": now - 335 * DAY, "end": now + 30 * DAY + 3600,
         "amount": amount, "currency": "CNY", "sales_owner": {"name": "周杰"}},
        {"_id": ids[1], "customer": crm_id, "product": "冷库监控 SaaS", "start": now - 300 * DAY, "end": now + 200 * DAY,
         "amount": 48_000, "currency": "CNY"},
    ])
    return ids


async def voice_note(rig: PortalRig, openid: str) -> str:
    """A voice note as the worker stores it after Whisper transcribed it."""
    mid = f"wechat:demo:voice-{uuid.uuid4().hex[:8]}"
    await rig.harness.runtime.store.messages.insert_one({
        "_id": mid, "direction": "in", "channel": "wechat", "account": "demo", "customer": channel_identity("wechat", "demo", openid),
        "sender": openid, "conversation": f"wechat:demo:{openid}", "kind": "voice", "ts": time.time(), "text": "",
        "media": {"media_id": "MEDIA-123", "format": "amr", "url": None, "recognition": None},
        "transcript": {"text": "空调不制冷了", "language": "zh", "confidence": 0.91, "engine": "faster", "model": "whisper-base (faster-whisper 1.2.1)", "source": "whisper"},
    })
    # The audio as the voice step keeps it at arrival (bot.voice_archive).
    archive = VoiceArchive(rig.harness.runtime.store.messages.database, VoiceArchiveSettings())
    assert await archive.keep(mid, b"#!AMR\n" + b"\x00" * 64, "amr", customer=channel_identity("wechat", "demo", openid))
    return mid
