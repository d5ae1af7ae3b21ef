"""RFC 5322 mail -> the parts Kefu needs: identity, threading, clean text, attachments.

Also decides which mails must never be answered (auto-replies, bounces, bulk and list
mail), and strips quoted history and signatures so NLU sees only what the customer just
wrote; the full text stays available for the record.

Docs: https://www.rfc-editor.org/rfc/rfc5322 (Message-ID, In-Reply-To, References)
      https://www.rfc-editor.org/rfc/rfc3834 (Auto-Submitted, responding to mail)
      https://www.rfc-editor.org/rfc/rfc3464 (delivery status notifications)
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser

from bot.errors import KefuError


class MalformedMail(KefuError):
    """A mail that cannot be handled; it is quarantined with this reason."""

    code = "malformed_mail"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes

    @property
    def is_audio(self) -> bool:
        return self.content_type.startswith("audio/") or self.filename.lower().rsplit(".", 1)[-1] in AUDIO_EXTENSIONS

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def extension(self) -> str:
        if "." in self.filename:
            return self.filename.rsplit(".", 1)[-1].lower()
        return self.content_type.rsplit("/", 1)[-1].lower()


AUDIO_EXTENSIONS = frozenset({"amr", "mp3", "m4a", "wav", "ogg", "opus", "silk", "aac", "flac"})


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str  # without angle brackets; "" when the mail has none
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    sender: str  # lower-cased address
    sender_name: str
    timestamp: float
    text: str  # the whole plain-text body (quotes included)
    html: str
    attachments: tuple[Attachment, ...]
    auto_reason: str  # why this mail must not be answered; "" for a person's mail

    @property
    def fresh_text(self) -> str:
        """What the customer just wrote: quotes and signature removed."""
        return strip_quoted(self.text)


_MSGID = re.compile(r"<([^<>\s]+)>")


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse: treat it as absent
        return ""
    return str(value).strip() if value is not None else ""


def auto_reason(msg: EmailMessage, sender: str) -> str:
    """Why a mail was sent by a machine (and answering could loop), or "" for a person."""
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"auto-submitted: {auto}"
    local = sender.split("@", 1)[0]
    if local in ("mailer-daemon", "postmaster") or _header(msg, "Return-Path") == "<>":
        return "bounce"
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    precedence = _header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if _header(msg, name):
            return f"{name.lower()}"
    if _header(msg, "List-Id") or _header(msg, "List-Unsubscribe"):
        return "mailing list"
    return ""


def parse_mail(raw: bytes, *, max_bytes: int = 25 * 1024 * 1024) -> ParsedMail:
    """Parse one mail; raise ``MalformedMail`` when it cannot be handled."""
    if len(raw) > max_bytes:
        raise MalformedMail(f"mail of {len(raw)} bytes is over the {max_bytes} byte limit")
    if not raw.strip():
        raise MalformedMail("empty mail")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        name, sender = email.utils.parseaddr(_header(msg, "From"))
        sender = sender.strip().lower()
        if "@" not in sender:
            raise MalformedMail("no usable From address")
        date = _header(msg, "Date")
        try:
            parsed_date = email.utils.parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError):
            parsed_date = None
        text, html, attachments = _walk(msg)
    except MalformedMail:
        raise
    except Exception as exc:  # the stdlib parser raises a zoo of errors on hostile mail
        raise MalformedMail(f"unparseable mail: {type(exc).__name__}: {exc}") from exc
    ids = _ids(_header(msg, "Message-ID"))
    in_reply_to = _ids(_header(msg, "In-Reply-To"))
    return ParsedMail(
        message_id=ids[0] if ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=_ids(_header(msg, "References")),
        subject=_header(msg, "Subject"),
        sender=sender,
        sender_name=name,
        timestamp=parsed_date.timestamp() if parsed_date is not None else 0.0,
        text=text if text.strip() else html_to_text(html),
        html=html,
        attachments=attachments,
        auto_reason=auto_reason(msg, sender),
    )


def _walk(msg: EmailMessage) -> tuple[str, str, tuple[Attachment, ...]]:
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        assert isinstance(part, EmailMessage)
        disposition = part.get_content_disposition()
        ctype = part.get_content_type()
        if disposition in ("attachment", "inline") and (part.get_filename() or disposition == "attachment"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                attachments.append(Attachment(part.get_filename() or "attachment", ctype, payload))
            continue
        if ctype == "text/plain":
            text_parts.append(_text_of(part))
        elif ctype == "text/html":
            html_parts.append(_text_of(part))
        elif ctype.startswith(("audio/", "image/", "application/")):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                attachments.append(Attachment(part.get_filename() or "attachment", ctype, payload))
    return "\n".join(text_parts), "\n".join(html_parts), tuple(attachments)


def _text_of(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        return content if isinstance(content, str) else ""
    except (LookupError, UnicodeError):
        # An unknown or lying charset: keep what decodes rather than drop the mail.
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "blockquote"):
            self.parts.append("\n")
        if tag == "blockquote":
            self.parts.append("\n> ")  # quoted history, so strip_quoted can drop it

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML-only mail (tags dropped, blocks on their own lines)."""
    if not html:
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    return re.sub(r"\n{3,}", "\n\n", "".join(extractor.parts)).strip()


# Lines that start quoted history in the clients our customers use (Gmail, Outlook,
# Apple Mail, QQ Mail, NetEase, Foxmail), in English and Chinese.
_QUOTE_HEADERS = [
    re.compile(r"^\s*On\b.{0,200}\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*在\s?.{0,200}写道\s*[:：]\s*$"),
    re.compile(r"^\s*-{2,}\s*(Original Message|原始邮件|Forwarded message|转发的邮件)\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*(From|发件人)\s*[:：].+$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
]
_SIGNATURE = [
    re.compile(r"^-- ?$"),  # RFC 3676 signature separator
    re.compile(r"^\s*(Sent from my \w+|Get Outlook for \w+|发自我的\s*\S+|来自\s*\S*邮箱)", re.IGNORECASE),
]


def strip_quoted(text: str) -> str:
    """The new part of a reply: stop at the quoted history or the signature."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _SIGNATURE):
            break
        if any(p.match(line) for p in _QUOTE_HEADERS):
            break
        # Gmail wraps long "On ... wrote:" headers over two lines.
        if i + 1 < len(lines) and line.strip().startswith("On ") and lines[i + 1].strip().endswith("wrote:"):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()
