"""The mail that carries a signed PDF summary to the address the customer named.

It goes out through an email channel account's own SMTP server (the channel's
``send_mail``), with the PDF, its detached signature and the public key attached, and a
body that says how to check the signature and where to compare the key's fingerprint.
"""

from __future__ import annotations

import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone
from typing import Protocol

from portal.i18n import text


class MailSender(Protocol):
    """What the portal needs of an email channel account."""

    address: str
    from_name: str

    async def send_mail(self, msg: EmailMessage) -> None: ...


def summary_mail(
    sender: MailSender, *, to: str, language: str, pdf: bytes, signature: bytes, key_pem: bytes,
    fingerprint: str, key_url: str, made_at: float,
) -> EmailMessage:
    msg = EmailMessage()
    local, _, domain = sender.address.partition("@")
    msg["From"] = Address(display_name=sender.from_name, username=local, domain=domain)
    msg["To"] = to
    msg["Subject"] = text("summary_mail_subject", language)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}.summary.kefu@{domain}>"
    msg["Date"] = format_datetime(datetime.fromtimestamp(made_at, timezone.utc))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: robots do not answer it
    msg.set_content(text("summary_mail_body", language, fingerprint=fingerprint, url=key_url))
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="summary.pdf")
    msg.add_attachment(signature, maintype="application", subtype="octet-stream", filename="summary.pdf.sig")
    msg.add_attachment(key_pem, maintype="application", subtype="x-pem-file", filename="signing-key.pem")
    return msg
