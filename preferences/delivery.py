"""Turning decided notifications into outbox messages: the addresses this gateway can
send on, the account a send leaves from, the rendered text, and queueing in chunks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.messages import OutboundMessage
from bot.mongo import Document
from bot.outbox import Outbox
from bot.store import MessageStore
from preferences.model import Preferences
from preferences.render import Renderer
from preferences.store import PreferenceStore

#: Outbox keys of notifications (``pref:n:<id>:<channel>``) and digests (``pref:d:...``).
KEY_PREFIX = "pref:"
_ENQUEUE_CHUNK = 500


class Delivery:
    def __init__(
        self,
        outbox: Outbox,
        prefs: PreferenceStore,
        renderer: Renderer,
        *,
        message_store: MessageStore | None = None,
        channel_ok: Callable[[str, str], bool] | None = None,
        default_accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.outbox = outbox
        self.prefs = prefs
        self.renderer = renderer
        self.message_store = message_store
        self.channel_ok = channel_ok
        self.default_accounts = dict(default_accounts or {})

    def available(self, prefs: Preferences) -> Preferences:
        """Preferences with only the addresses whose channel this gateway can send on."""
        if self.channel_ok is None:
            return prefs
        ok = {c: a for c, a in prefs.addresses.items() if self.channel_ok(c, self.account(c, a.account))}
        return dataclasses.replace(prefs, addresses=ok)

    def account(self, channel: str, account: str) -> str:
        return account or self.default_accounts.get(channel, "")

    def outbound(self, prefs: Preferences, channel: str, key: str, text: str, topic: str) -> OutboundMessage | None:
        addr = prefs.addresses.get(channel)
        if addr is None:
            return None
        account = self.account(channel, addr.account)
        cls = self.prefs.book.classes[channel]
        return OutboundMessage(
            channel=channel,
            account=account,
            recipient=addr.recipient,
            conversation=cls.conversation_for(account, addr.fields(cls.recipient_field)),
            idempotency_key=key,
            text=text,
            topic=topic,
        )

    def render_notification(self, doc: Mapping[str, Any], channel: str) -> str:
        return self.renderer.render(
            doc["template"], doc["language"], channel, detail=doc["detail"], data=doc["data"], topic=doc["topic"]
        )

    def render_digest(self, language: str, channel: str, items: list[Document]) -> str:
        """A digest: items grouped by topic, groups and items newest first."""
        groups: dict[str, list[dict[str, str]]] = {}
        for doc in sorted(items, key=lambda d: d["created_at"], reverse=True):
            text = (doc.get("text") or {}).get(channel) or self.render_notification(doc, channel)
            groups.setdefault(doc["topic"], []).append({"text": text, "headline": text.splitlines()[0] if text else ""})
        period = "weekly" if any(d.get("period") == "weekly" for d in items) else "daily"
        return self.renderer.render(
            "digest",
            language,
            channel,
            period=period,
            total=len(items),
            groups=[{"topic": t, "entries": its} for t, its in groups.items()],
        )


    async def enqueue(self, messages: Sequence[OutboundMessage], *, record: bool = True) -> None:
        for start in range(0, len(messages), _ENQUEUE_CHUNK):
            chunk = messages[start : start + _ENQUEUE_CHUNK]
            if record and self.message_store is not None:
                # Recorded before queueing so the sender's status marks land on a record.
                for msg in chunk:
                    await self.message_store.save_outbound(msg)
            await self.outbox.enqueue(chunk)

