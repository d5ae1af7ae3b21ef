"""Outbound mail: multipart text + HTML from jinja2 templates, with threading headers.

A reply carries ``In-Reply-To`` (the customer's Message-ID), ``References`` (their
References plus that id) and a "Re: " subject, so every mail client files it in the
customer's thread. ``Auto-Submitted: auto-replied`` (RFC 3834) tells other robots not
to answer us, which keeps two bots from mailing each other forever.

Docs: https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
      https://www.rfc-editor.org/rfc/rfc3834#section-5
"""

from __future__ import annotations

import hashlib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from importlib import resources
from pathlib import Path

import jinja2

MAX_REFERENCES = 20  # long threads: keep the root and the newest ids, as RFC 5322 allows
_RE = re.compile(r"^\s*(re|回复|答复)\s*[:：]", re.IGNORECASE)


class MailTemplates:
    """The channel's own templates, read once at startup (call it off the event loop)."""

    def __init__(self, override_dir: Path | None = None) -> None:
        root = Path(str(resources.files("channels.email") / "templates"))
        sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(root.glob("*.j2"))}
        if override_dir is not None and override_dir.is_dir():
            sources.update({p.name: p.read_text(encoding="utf-8") for p in sorted(override_dir.glob("*.j2"))})
        self.text = jinja2.Environment(loader=jinja2.DictLoader(sources), autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        # HTML gets escaping: the reply text comes from templates fed by customer input.
        self.html = jinja2.Environment(loader=jinja2.DictLoader(sources), autoescape=True, undefined=jinja2.StrictUndefined)

    def render(self, text: str, *, subject: str, signature: str) -> tuple[str, str]:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        plain = self.text.get_template("reply.txt.j2").render(text=text, subject=subject, signature=signature)
        html = self.html.get_template("reply.html.j2").render(paragraphs=paragraphs, subject=subject, signature=signature)
        return plain, html


def reply_subject(subject: str, default: str) -> str:
    subject = " ".join(subject.split()) or default
    return subject if _RE.match(subject) else f"Re: {subject}"


def message_id_for(idempotency_key: str, domain: str) -> str:
    """A Message-ID fixed by the send's identity: a retried send carries the same id,
    so receiving servers and clients can recognise the duplicate."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"{digest}.kefu@{domain}"


def build_reply(
    *,
    from_address: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    when: float | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    local, _, domain = from_address.partition("@")
    msg["From"] = Address(display_name=from_name, username=local, domain=domain)
    to_name, to_addr = parseaddr(to)
    msg["To"] = to_addr or to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if when is not None:
        import datetime as dt

        msg["Date"] = format_datetime(dt.datetime.fromtimestamp(when, dt.timezone.utc))
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        chain = [r for r in references if r != in_reply_to] + [in_reply_to]
        if len(chain) > MAX_REFERENCES:
            chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
        msg["References"] = " ".join(f"<{r}>" for r in chain)
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange/Outlook: no out-of-office to us
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
