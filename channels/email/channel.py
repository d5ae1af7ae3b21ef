"""The email channel: IMAP in (IDLE, polling fallback), SMTP out, threads kept.

Inbound runs in the worker (:meth:`run_background`): one process per mailbox fetches new
mail in UID order (:mod:`channels.email.mailbox`), each mail becomes one
:class:`InboundMessage` in its thread's conversation, attachments go to GridFS and an
audio attachment makes it a VOICE message. Auto-replies, bounces and bulk mail are
recorded as EVENT messages (``auto_reply``) and never answered; mail that cannot be
parsed is quarantined as a dead letter with its reason.

Outbound builds a multipart text + HTML reply from this package's templates with
In-Reply-To/References/"Re:" and sends it with aiosmtplib (implicit TLS or STARTTLS).

Docs: https://www.rfc-editor.org/rfc/rfc3501 https://www.rfc-editor.org/rfc/rfc5321
      https://www.rfc-editor.org/rfc/rfc3834 (never answer automatic mail)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

import aiosmtplib

from bot.logs import ref
from bot.errors import ConfigError
from bot.messages import InboundMessage, MediaRef, MessageKind, OutboundMessage
from bot.store import MessageStore
from channels.base import Channel, ChannelContext, Received, WebhookRequest
from channels.email.attachments import AttachmentStore
from channels.email.compose import MailTemplates, build_reply, message_id_for, reply_subject
from channels.email.mailbox import Cursor, ImapIntake, ImapSettings, MailboxLock
from channels.email.parser import MalformedMail, ParsedMail, parse_mail
from channels.email.threads import ThreadIndex
from channels.errors import PermanentSendError, PlatformUnavailable, WebhookRejected

log = logging.getLogger(__name__)

CHANNEL = "email"
RAW_LIMIT = 256 * 1024  # the full text kept with a message; attachments live in GridFS
MAX_REFERENCES_HINT = 20

_EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 465
    ssl: bool = True
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: float = 30.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SmtpSettings:
        use_ssl = bool(data.get("ssl", True))
        starttls = bool(data.get("starttls", False))
        if use_ssl and starttls:
            raise ConfigError("smtp: ssl and starttls are exclusive (ssl = implicit TLS on 465, starttls = upgrade on 587)")
        return cls(
            host=str(data["host"]),
            port=int(data.get("port", 465 if use_ssl else 587 if starttls else 25)),
            ssl=use_ssl,
            starttls=starttls,
            username=str(data.get("username", "")),
            password=str(data.get("password", "")),
            timeout_s=float(data.get("timeout_s", 30.0)),
        )


class EmailChannel(Channel):
    name = "email"
    display_name = {"zh": "邮件", "en": "email"}
    recipient_field = "address"

    @classmethod
    def recipient_problem(cls, recipient: str) -> str | None:
        return None if _EMAIL_ADDRESS.match(recipient) else "not an email address"

    def __init__(
        self,
        account: str,
        *,
        address: str,
        from_name: str,
        imap: ImapSettings,
        smtp: SmtpSettings,
        ctx: ChannelContext,
        templates_dir: Path | None = None,
        signature: str = "",
        intake_options: Mapping[str, Any] | None = None,
        max_mail_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        super().__init__(account)
        if ctx.store is None or ctx.enqueue is None:
            raise ConfigError(f"channels.email[{account}]: needs the message store and the inbound queue")
        self.address = address
        self.from_name = from_name
        self.smtp = smtp
        self._templates_dir = templates_dir
        self._templates: MailTemplates | None = None
        self._tls: ssl.SSLContext | None = None
        self.signature = signature or from_name
        self.store: MessageStore = ctx.store
        self._enqueue = ctx.enqueue
        self.threads = ThreadIndex(ctx.redis, account)
        self.attachments = AttachmentStore(ctx.store.db)
        self.max_mail_bytes = max_mail_bytes
        options = dict(intake_options or {})
        prefix = f"kefu:email:{account}:"
        self.intake = ImapIntake(
            imap,
            lock=MailboxLock(ctx.redis, prefix + "lock", ttl_ms=int(options.pop("lock_ttl_ms", 30_000))),
            cursor=Cursor(ctx.redis, prefix + "cursor"),
            on_mail=self.ingest,
            name=f"{account} ({imap.username}@{imap.host}/{imap.folder})",
            **options,
        )

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        account = str(section["account"])
        address = str(section.get("address", ""))
        if "@" not in address:
            raise ConfigError(f"channels.email[{account}]: address must be an email address")
        for part in ("imap", "smtp"):
            if not isinstance(section.get(part), Mapping) or not section[part].get("host"):
                raise ConfigError(f"channels.email[{account}]: {part}.host is required")
        intake = {
            k: section[k]
            for k in ("poll_s", "idle_s", "batch", "retry_s", "lock_ttl_ms", "initial")
            if k in section
        }
        if "idle" in section:
            intake["use_idle"] = bool(section["idle"])
        templates_dir = section.get("templates_dir")
        return cls(
            account,
            address=address,
            from_name=str(section.get("display_name", "Customer Service")),
            imap=ImapSettings.from_mapping(section["imap"]),
            smtp=SmtpSettings.from_mapping(section["smtp"]),
            ctx=ctx,
            templates_dir=Path(templates_dir) if templates_dir else None,
            signature=str(section.get("signature", "")),
            intake_options=intake,
            max_mail_bytes=int(section.get("max_mail_bytes", 25 * 1024 * 1024)),
        )

    @classmethod
    def route_paths(cls) -> Sequence[str]:
        return ()  # mail arrives over IMAP, not through a webhook

    def receive(self, request: WebhookRequest) -> Received:
        raise WebhookRejected("email has no webhook")

    async def run_background(self, stop: asyncio.Event) -> None:
        await self.intake.run(stop)

    # -- inbound ----------------------------------------------------------------------
    async def ingest(self, uidvalidity: int, uid: int, raw: bytes) -> None:
        """Turn one fetched mail into a queued message, or quarantine it.

        Raises only when the queue or the store is unreachable, so the cursor does not
        move past a mail that was not handed over.
        """
        where = f"{uidvalidity}:{uid}"
        try:
            # MIME parsing is CPU work (milliseconds per mail, far more for big ones): off the loop.
            mail = await asyncio.to_thread(parse_mail, raw, max_bytes=self.max_mail_bytes)
        except MalformedMail as exc:
            log.warning("email/%s: mail %s quarantined: %s", self.account, where, exc.message)
            await self.store.dead_letter(
                kind="email", key=f"{self.account}:{where}", payload=raw[:RAW_LIMIT].decode("utf-8", "replace"), reason=exc.message, attempts=1
            )
            return
        message = await self.to_message(mail, fallback_id=f"uid-{where}")
        await self._enqueue((message,))

    async def to_message(self, mail: ParsedMail, *, fallback_id: str) -> InboundMessage:
        platform_id = hashlib.sha1(mail.message_id.encode()).hexdigest()[:24] if mail.message_id else fallback_id
        conversation = await self.threads.resolve(mail.message_id, mail.in_reply_to, mail.references, fallback=fallback_id)
        extra: list[tuple[str, str]] = [("subject", mail.subject)]
        if mail.message_id:
            extra.append(("message_id", mail.message_id))
        if mail.references:
            extra.append(("references", " ".join(mail.references[-MAX_REFERENCES_HINT:])))
        timestamp = mail.timestamp or time.time()
        if mail.auto_reason:
            # Recorded in the conversation, never answered (and send() refuses it too).
            log.info("email/%s: automatic mail from %s not answered (%s)", self.account, ref(mail.sender), mail.auto_reason)
            return InboundMessage(
                channel=CHANNEL, account=self.account, sender=mail.sender, conversation=conversation,
                kind=MessageKind.EVENT, platform_id=platform_id, timestamp=timestamp, event="auto_reply",
                event_key=mail.auto_reason, extra=(*extra, ("auto_submitted", mail.auto_reason)), raw=mail.text[:RAW_LIMIT],
            )
        refs: list[MediaRef] = []
        for i, attachment in enumerate(mail.attachments):
            file_id = await self.attachments.put(
                f"{self.account}:{platform_id}:{i}", attachment, {"account": self.account, "conversation": conversation, "filename": attachment.filename}
            )
            refs.append(MediaRef(media_id=file_id, format=attachment.extension, url=f"gridfs:email_attachments/{file_id}"))
        stored = [r.media_id for r in refs]
        # The message's media is the first audio attachment (a voice message), else the first file.
        audio = [r for r, a in zip(refs, mail.attachments) if a.is_audio]
        media = audio[0] if audio else refs[0] if refs else None
        if stored:
            extra.append(("attachments", " ".join(stored)))
        text = mail.fresh_text or (mail.subject if not mail.attachments else "")
        if any(a.is_audio for a in mail.attachments):
            kind = MessageKind.VOICE
        elif text:
            kind = MessageKind.TEXT
        elif mail.attachments:
            kind = MessageKind.IMAGE if mail.attachments[0].is_image else MessageKind.FILE
        else:
            kind = MessageKind.UNKNOWN
        return InboundMessage(
            channel=CHANNEL, account=self.account, sender=mail.sender, conversation=conversation, kind=kind,
            platform_id=platform_id, timestamp=timestamp, text=text, media=media, extra=tuple(extra), raw=mail.text[:RAW_LIMIT],
        )

    async def fetch_media(self, media: MediaRef) -> bytes:
        return await self.attachments.get(media.media_id)

    # -- outbound ---------------------------------------------------------------------
    async def templates(self) -> MailTemplates:
        # Read from disk once, off the event loop (the channel is built inside it).
        if self._templates is None:
            self._templates = await asyncio.to_thread(MailTemplates, self._templates_dir)
        return self._templates

    async def _tls_context(self) -> ssl.SSLContext:
        # Loading the CA bundle reads files: once, in a thread.
        if self._tls is None:
            self._tls = await asyncio.to_thread(ssl.create_default_context)
        return self._tls

    async def send_text(self, reply: OutboundMessage) -> None:
        if reply.hint("auto_submitted"):
            # The last line against mail loops, whatever a skill decided.
            raise PermanentSendError(f"never answering automatic mail ({reply.hint('auto_submitted')})")
        subject = reply_subject(reply.hint("subject"), default=self.from_name)
        templates = await self.templates()
        plain, html = templates.render(reply.text, subject=subject, signature=self.signature)
        message_id = message_id_for(reply.idempotency_key, self.address.partition("@")[2])
        references = tuple(reply.hint("references").split()) if reply.hint("references") else ()
        msg = build_reply(
            from_address=self.address, from_name=self.from_name, to=reply.recipient, subject=subject,
            text=plain, html=html, message_id=message_id, in_reply_to=reply.hint("message_id"),
            references=references, when=time.time(),
        )
        await self.send_mail(msg)
        await self.threads.remember(message_id, reply.conversation)

    async def send_mail(self, msg: EmailMessage) -> None:
        """Send a finished mail through this account's SMTP server (also the portal's
        signed summaries); PermanentSendError for a 5xx, PlatformUnavailable otherwise."""
        s = self.smtp
        try:
            await aiosmtplib.send(
                msg, hostname=s.host, port=s.port, username=s.username or None, password=s.password or None,
                use_tls=s.ssl, start_tls=s.starttls, timeout=s.timeout_s,
                tls_context=await self._tls_context() if (s.ssl or s.starttls) else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentSendError(f"recipient refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = PermanentSendError if 500 <= exc.code < 600 else PlatformUnavailable
            raise error(f"SMTP {exc.code}: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise PlatformUnavailable(f"SMTP: {type(exc).__name__}: {exc}") from exc
