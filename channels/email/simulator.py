"""``kefu simulate email``: put a customer's mail in the mailbox, read the reply back.

What it needs: the account's ``imap`` block (the mail is APPENDed to its folder, as if
it had been delivered) and, to show the reply, a ``simulate.reply_imap`` block naming
the mailbox the gateway's SMTP server delivers the customer's mail to (a local test
server such as dovecot behind an SMTP sink, or ``mail-devel``). Without it the mail is
still sent in and the command says that no reply was read.

    channels:
      email:
        - account: support
          ...
          simulate:
            reply_imap: {host: 127.0.0.1, port: 1143, ssl: false, username: customer, password: pw}
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import email.utils
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aioimaplib

from channels.email.mailbox import ImapSettings, _literals, _numbers, _ok
from channels.email.parser import strip_quoted


def customer_mail(
    sender: str,
    to: str,
    text: str,
    *,
    subject: str = "咨询 / Enquiry",
    message_id: str | None = None,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    headers: Mapping[str, str] | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> tuple[str, bytes]:
    """(Message-ID, RFC 5322 bytes) of a mail as a customer's client would send it."""
    domain = email.utils.parseaddr(sender)[1].partition("@")[2] or "example.com"
    message_id = message_id or f"{uuid.uuid4().hex}@{domain}"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = email.utils.formatdate(localtime=True)
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    for filename, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message_id, bytes(msg)


class SimulationError(Exception):
    pass


@dataclass(frozen=True)
class SimulateOptions:
    sender: str = "customer@example.com"
    text: str = ""
    voice: Path | None = None
    wait_s: float = 15.0


async def _imap(settings: ImapSettings) -> aioimaplib.IMAP4:
    imap = (
        aioimaplib.IMAP4_SSL(host=settings.host, port=settings.port, timeout=settings.timeout_s)
        if settings.ssl
        else aioimaplib.IMAP4(host=settings.host, port=settings.port, timeout=settings.timeout_s)
    )
    await imap.wait_hello_from_server()
    _ok(await imap.login(settings.username, settings.password), "LOGIN")
    return imap


async def replies_to(settings: ImapSettings, message_id: str) -> list[str]:
    """Plain-text bodies of the mails in a mailbox that answer ``message_id``."""
    imap = await _imap(settings)
    try:
        _ok(await imap.select(settings.folder), "SELECT")
        found = _ok(await imap.uid_search("HEADER", "In-Reply-To", f"<{message_id}>", charset=None), "UID SEARCH")
        uids = _numbers(found.lines)
        if not uids:
            return []
        fetched = _ok(await imap.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[])"), "UID FETCH")
        texts = []
        for _uid, raw in sorted(_literals(fetched.lines)):
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            body = msg.get_body(preferencelist=("plain",))
            content = body.get_content() if body is not None else ""
            texts.append(strip_quoted(str(content)))
        return texts
    finally:
        with contextlib.suppress(Exception):
            await imap.logout()


async def simulate(session: aiohttp.ClientSession, gateway_url: str, account: Mapping[str, Any], opts: SimulateOptions) -> list[str]:
    """APPEND one customer mail to the account's mailbox; return the replies read back."""
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    if opts.voice is not None:
        attachments = ((opts.voice.name, "audio/" + (opts.voice.suffix.lstrip(".") or "mpeg"), await asyncio.to_thread(opts.voice.read_bytes)),)
    message_id, raw = customer_mail(opts.sender, str(account["address"]), opts.text or "(voice message)", attachments=attachments)
    mailbox = ImapSettings.from_mapping(account["imap"])
    imap = await _imap(mailbox)
    try:
        _ok(await imap.append(raw, mailbox=mailbox.folder), "APPEND")
    finally:
        with contextlib.suppress(Exception):
            await imap.logout()
    reply_box = (account.get("simulate") or {}).get("reply_imap")
    if not reply_box:
        return []
    settings = ImapSettings.from_mapping(reply_box)
    deadline = time.monotonic() + opts.wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        found = await replies_to(settings, message_id)
        if found:
            return found
    return []
