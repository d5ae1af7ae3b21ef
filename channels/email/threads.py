"""Which conversation a mail belongs to, from Message-ID, In-Reply-To and References.

Every Message-ID we see or send is remembered in Redis with its conversation, so a
customer's reply to our reply (or to their own earlier mail) lands in the same
conversation. A mail referring to nothing we know starts a conversation named after
the thread's root (the first References entry, else its own Message-ID), so two
mails of one thread that reach us out of order still meet.

Docs: https://www.rfc-editor.org/rfc/rfc5322#section-3.6.4
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis

THREAD_TTL_S = 180 * 86_400  # a customer may answer a months-old mail


def _digest(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8", "replace")).hexdigest()


class ThreadIndex:
    def __init__(self, redis: Redis, account: str, *, ttl_s: int = THREAD_TTL_S) -> None:
        self._redis = redis
        self.account = account
        self._prefix = f"kefu:email:{account}:mid:"
        self._ttl_s = ttl_s

    def conversation_for_root(self, root_message_id: str) -> str:
        return f"email:{self.account}:{_digest(root_message_id)[:16]}"

    async def resolve(self, message_id: str, in_reply_to: str, references: Sequence[str], *, fallback: str) -> str:
        """The conversation of a mail, remembering its Message-ID for the replies to come."""
        # Nearest ancestor first: In-Reply-To, then References from the newest back.
        candidates = [m for m in (in_reply_to, *reversed(references)) if m]
        conversation = ""
        if candidates:
            found = await self._redis.mget([self._prefix + _digest(m) for m in candidates])
            conversation = next((v.decode() if isinstance(v, bytes) else str(v) for v in found if v is not None), "")
        if not conversation:
            root = references[0] if references else in_reply_to or message_id or fallback
            conversation = self.conversation_for_root(root)
        if message_id:
            await self.remember(message_id, conversation)
        return conversation

    async def remember(self, message_id: str, conversation: str) -> None:
        await self._redis.set(self._prefix + _digest(message_id), conversation, ex=self._ttl_s)
