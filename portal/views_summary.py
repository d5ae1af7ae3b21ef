"""My data, the signed PDF summary: named address, confirmed, drawn, signed, mailed.

Two steps, so that a summary only goes where the customer looked twice: the address they
type is kept in Redis under a random id and shown back for confirmation; only the
confirmation (with that id, used once) sends. Sending is limited per customer and hour
and audited with the address and the PDF's SHA-256. The public key is at
``/portal/signing-key.pem`` for anyone to check a signature against.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from bot.errors import KefuError
from portal.access import flash, locale
from portal.errors import PortalError
from portal.i18n import text
from portal.members import Module, parse_contact
from portal.signing import fingerprint
from portal.state import PortalRoute, portal, viewer
from portal.summary import SummaryFacts, find_font, render_pdf
from portal.summary_mail import summary_mail
from webui.errors import BadInput
from webui.forms import fields, one

log = logging.getLogger(__name__)

PENDING = "kefu:portal:summary-pending:"
SENT = "kefu:portal:summary-sent:"
PENDING_TTL_S = 600


class SummaryUnavailable(PortalError):
    code = "summary_unavailable"
    status = 503


class TooManySummaries(PortalError):
    code = "too_many_summaries"
    status = 429


async def summary_context(request: web.Request) -> dict[str, Any]:
    """What the data page shows about summaries: can we mail, and an address awaiting confirmation."""
    p = portal(request)
    pending_id = request.query.get("summary", "")[:32]
    pending = ""
    if pending_id:
        raw = await p.deps.redis.get(PENDING + viewer(request).customer + ":" + pending_id)
        pending = "" if raw is None else json.loads(raw)["address"]
    return {
        "summary_ready": p.deps.mailer is not None, "summary_pending": pending, "summary_id": pending_id if pending else "",
        "summary_fingerprint": fingerprint(await p.deps.signer.public_pem()),
    }


async def prepare(request: web.Request) -> web.StreamResponse:
    """POST /portal/data/summary: the named address, shown back for confirmation."""
    p = portal(request)
    data = await fields(request)
    kind, address = parse_contact(one(data, "address", max_len=254))
    if kind != "email":
        raise BadInput("enter an email address")
    pending_id = secrets.token_urlsafe(12)
    await p.deps.redis.set(PENDING + viewer(request).customer + ":" + pending_id, json.dumps({"address": address}), ex=PENDING_TTL_S)
    raise web.HTTPSeeOther(f"/portal/data?summary={pending_id}#summary")


async def send(request: web.Request) -> web.StreamResponse:
    """POST /portal/data/summary/send: the confirmed address gets the signed PDF."""
    p = portal(request)
    who = viewer(request)
    mailer = p.deps.mailer
    if mailer is None:
        raise SummaryUnavailable("no email account is configured for sending summaries")
    data = await fields(request)
    raw = await p.deps.redis.getdel(PENDING + who.customer + ":" + one(data, "id", max_len=32))
    if raw is None:
        raise BadInput("that confirmation has expired: enter the address again")
    address = str(json.loads(raw)["address"])
    await _within_limit(request, who.customer)
    font = await asyncio.to_thread(find_font, p.settings.summary_font)
    pem = await p.deps.signer.public_pem()
    key_url = f"{p.deps.links.public_url}/portal/signing-key.pem"
    facts = await _facts(request, fingerprint(pem), key_url)
    pdf = await asyncio.to_thread(render_pdf, facts, font)
    signature = await p.deps.signer.sign(pdf)
    msg = summary_mail(
        mailer, to=address, language=facts.prefs.language, pdf=pdf, signature=signature, key_pem=pem,
        fingerprint=fingerprint(pem), key_url=key_url, made_at=facts.made_at,
    )
    try:
        await mailer.send_mail(msg)
    except KefuError as exc:  # the mail channel's own errors: the portal knows no channel's internals
        log.warning("portal: summary mail not sent: %s", exc.code)
        raise SummaryUnavailable("the mail server did not take the summary; try again later") from None
    await p.audit.record(who, "data.summary", address, after={"sha256": hashlib.sha256(pdf).hexdigest(), "bytes": len(pdf)})
    await flash(request, text("summary_sent", locale(request).language, address=address))
    raise web.HTTPSeeOther("/portal/data#summary")


async def _within_limit(request: web.Request, customer: str) -> None:
    """At most ``summary_per_hour`` sends per customer in a fixed hour window."""
    p = portal(request)
    key = SENT + customer + ":" + str(int(time.time() // 3600))
    pipe = p.deps.redis.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 3600)
    count, _ = await pipe.execute()
    if int(count) > p.settings.summary_per_hour:
        log.info("portal: summary refused, over %d an hour", p.settings.summary_per_hour)
        raise TooManySummaries(f"at most {p.settings.summary_per_hour} summaries an hour; try again later")


async def _facts(request: web.Request, key_fingerprint: str, key_url: str) -> SummaryFacts:
    p = portal(request)
    customer = viewer(request).customer
    prefs, counts, voice, rules, members, audit = await asyncio.gather(
        p.deps.prefs.effective(customer), p.deps.rights.counts(customer), p.deps.rights.voice_notes(customer),
        p.deps.rules.of_customer(customer), p.members.of_customer(customer), p.audit.recent(customer, limit=30),
    )
    return SummaryFacts(
        made_at=time.time(), prefs=prefs, counts=counts, retention_days=p.deps.rights.retention_days, voice=voice,
        rules=rules, members=members, audit=audit, key_fingerprint=key_fingerprint, key_url=key_url,
    )


async def signing_key(request: web.Request) -> web.StreamResponse:
    """GET /portal/signing-key.pem: the public key summaries are signed with (anyone may fetch it)."""
    pem = await portal(request).deps.signer.public_pem()
    return web.Response(body=pem, content_type="application/x-pem-file", headers={"Cache-Control": "public, max-age=3600"})


ROUTES = (
    PortalRoute("POST", "/data/summary", prepare, Module.DATA, "data_summary"),
    PortalRoute("POST", "/data/summary/send", send, Module.DATA, "data_summary_send"),
    PortalRoute("GET", "/signing-key.pem", signing_key, None, "signing_key"),
)
