"""The inbound worker: everything slow happens here, off the webhook.

For each queued message: store it, build the turn (speech and NLU plug in here), let
the dispatcher pick a skill, and queue the replies in the outbox together with the
"handled" mark. A message is acknowledged on the stream only after that, so a worker
killed at any point leaves it pending for another worker to take over (XAUTOCLAIM), and
the handled mark plus idempotency keys make the second run send nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable

from bot.dispatch import Dispatcher, Reply, Turn
from bot.language import detect
from bot.messages import InboundMessage, OutboundMessage
from bot.outbox import Outbox
from bot.queue import Entry, InboundQueue
from bot.store import MessageStore
from channels.base import Channel

log = logging.getLogger(__name__)

ATTEMPTS_PREFIX = "kefu:inbound:attempts:"

ChannelLookup = Callable[[str, str], Channel | None]


class InboundWorker:
    def __init__(
        self,
        queue: InboundQueue,
        outbox: Outbox,
        store: MessageStore,
        dispatcher: Dispatcher,
        channels: ChannelLookup,
        *,
        consumer: str,
        batch: int = 32,
        max_attempts: int = 5,
    ) -> None:
        self.queue = queue
        self.outbox = outbox
        self.store = store
        self.dispatcher = dispatcher
        self.channels = channels
        self.consumer = consumer
        self.batch = batch
        self.max_attempts = max_attempts

    async def run(self, stop: asyncio.Event) -> None:
        await self.queue.ensure_group()
        while not stop.is_set():
            try:
                entries = await self.queue.read(self.consumer, count=self.batch, block_ms=500)
                await self.process_batch(entries)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbound worker loop failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def process_batch(self, entries: list[Entry]) -> None:
        # Conversations run concurrently, but one conversation's messages in order.
        by_conversation: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            by_conversation[_conversation_of(entry)].append(entry)

        async def run_in_order(items: list[Entry]) -> None:
            for item in items:
                await self.process(item)

        await asyncio.gather(*(run_in_order(items) for items in by_conversation.values()))

    async def process(self, entry: Entry) -> None:
        try:
            msg = InboundMessage.from_json(entry.payload)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("inbound entry %s is not a message (%s); dead-lettered", entry.entry_id, exc)
            await self.store.dead_letter(
                kind="inbound", key=entry.entry_id, payload=entry.payload.decode(errors="replace"), reason=str(exc), attempts=1
            )
            await self.queue.done(entry.entry_id)
            return
        try:
            await self.handle(msg)
        except Exception as exc:
            attempts = int(await self.queue.redis.incr(ATTEMPTS_PREFIX + msg.key))
            await self.queue.redis.expire(ATTEMPTS_PREFIX + msg.key, 86_400)
            if attempts >= self.max_attempts:
                log.exception("message %s failed %d times; dead-lettered", msg.key, attempts)
                await self.store.dead_letter(
                    kind="inbound", key=msg.key, payload=msg.to_json(), reason=repr(exc), attempts=attempts
                )
                await self.queue.done(entry.entry_id)
            else:
                # Left pending: another read (or another worker) takes it over after
                # claim_idle_ms, which doubles as the retry delay.
                log.warning("message %s failed (attempt %d): %r", msg.key, attempts, exc)
            return
        await self.queue.done(entry.entry_id)

    async def handle(self, msg: InboundMessage) -> None:
        if await self.outbox.is_handled(msg.key):
            return  # handled before a crash that came before the ack
        channel = self.channels(msg.channel, msg.account)
        if channel is not None:
            expanded = await channel.expand(msg)
            if tuple(expanded) != (msg,):
                # A notification: what it announced was queued (or is handled) on its own.
                await self.outbox.enqueue((), handled=msg.key)
                return
        await self.store.save_inbound(msg)
        turn = Turn(message=msg, language=detect(msg.text), text=msg.text)
        replies = await self.dispatcher.dispatch(turn)
        outbound = [self._outbound(msg, i, r) for i, r in enumerate(replies)]
        for reply in outbound:
            await self.store.save_outbound(reply)
        await self.outbox.enqueue(outbound, handled=msg.key)

    @staticmethod
    def _outbound(msg: InboundMessage, index: int, reply: Reply) -> OutboundMessage:
        return OutboundMessage(
            channel=msg.channel,
            account=msg.account,
            recipient=msg.sender,
            conversation=msg.conversation,
            idempotency_key=f"{msg.key}#{index}",
            kind=reply.kind,
            text=reply.text,
            image_path=reply.image_path,
            articles=reply.articles,
            in_reply_to=msg.key,
            extra=msg.extra,
        )


def _conversation_of(entry: Entry) -> str:
    # A junk payload gets a group of its own and is dead-lettered by process().
    try:
        return str(json.loads(entry.payload)["conversation"])
    except Exception:
        return entry.entry_id
