"""The inbound worker: everything slow happens here, off the webhook.

For each queued message, in its conversation's order: store it, turn voice into text,
ask NLU what it means, load the conversation state, let the skill router pick a skill,
save the state and queue the replies in the outbox together with the "handled" mark.
A message is acknowledged on the stream only after that, so a worker killed at any
point leaves it pending for another worker to take over (XAUTOCLAIM); the handled mark
and the idempotency keys make the second run send nothing twice.

While an agent owns the conversation the bot stores the message and stays silent; while
it waits for one, only some skills answer (see :mod:`skills.handoff`). A message that needs NLU while NLU is loading or unreachable waits
for it inside its conversation's turn (see :mod:`bot.nlu.readiness`): silently while
the wait is expected to be short, with one honest holding reply when it is not, and
handed to a person when it has waited too long. The wait keeps its stream entry and
conversation lock alive, so no other worker takes the message over meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator

from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.conversation.events import ConversationEvent, ConversationEvents
from bot.conversation.keywords import keyword_intent
from bot.conversation.ordering import ConversationGate
from bot.conversation.state import ConversationState, StateStore
from bot.end_of_turn import EndOfTurn
from bot.routing import SkillRouter, Reply, Turn
from bot.language import detect
from bot.logs import Outage, context, ref
from bot.metrics import Metrics
from bot.messages import InboundMessage, MessageKind, OutboundMessage
from bot.nlu.client import UNDERSTANDING_UNAVAILABLE, NluUnavailable, ParseResult
from bot.nlu.readiness import NluReadiness, Wait
from bot.outbox import Outbox
from bot.queue import ATTEMPTS_PREFIX, Entry, InboundQueue
from bot.store import MessageStore, channel_identity
from bot.tasks import cancel_and_wait
from bot.templates import Templates
from bot.voice import CorrectedTranscript, Deferred, VoiceStep
from channels.base import Channel, ChannelLookup

log = logging.getLogger(__name__)

# Failures of a store rather than of the message.
STORE_OUTAGES = (ConnectionFailure, RedisConnectionError, RedisTimeoutError)


class InboundWorker:
    def __init__(
        self,
        queue: InboundQueue,
        outbox: Outbox,
        store: MessageStore,
        router: SkillRouter,
        channels: ChannelLookup,
        *,
        states: StateStore,
        gate: ConversationGate,
        templates: Templates,
        nlu: NluReadiness | None = None,
        voice: VoiceStep | None = None,
        events: ConversationEvents | None = None,
        consumer: str,
        batch: int = 32,
        max_attempts: int = 5,
        capacity: int = 64,
        metrics: Metrics | None = None,
    ) -> None:
        self.queue = queue
        self.outbox = outbox
        self.store = store
        self.router = router
        self.channels = channels
        self.states = states
        self.gate = gate
        self.templates = templates
        self.nlu = nlu
        self.voice = voice
        self.events = events
        self.consumer = consumer
        self.batch = batch
        self.max_attempts = max_attempts
        self.capacity = capacity  # conversations in flight at once
        self.metrics = metrics
        self._outage = Outage(log, "inbound turns (a store is unreachable)")
        self._in_hand: set[str] = set()  # stream entries being handled now
        self._end_of_turn = EndOfTurn(
            queue.redis, outbox, queue, event_channel=events.channel if events is not None else ""
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Read and handle messages until ``stop``.

        Reading does not wait for a whole batch to finish: a voice note being
        transcribed must not hold up the text messages read with it or after it. Up
        to ``capacity`` conversations' messages are in flight; one conversation's
        messages still go one at a time, in order (see ConversationGate).
        """
        await self.queue.ensure_group()
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.capacity - len(in_flight)
                if free <= 0:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    entries = await self.queue.read(self.consumer, count=min(self.batch, free), block_ms=200)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    await self.queue.recover("inbound")
                    continue
                for items in _by_conversation(entries).values():
                    task = asyncio.create_task(self._in_order(items))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            # Unfinished messages are not acknowledged: another worker takes them over.
            await cancel_and_wait(in_flight)
            # A restart must not leave them idle until claim_idle_ms has passed.
            await self.queue.release(self.consumer, sorted(self._in_hand))

    async def _in_order(self, items: list[Entry]) -> None:
        for item in items:
            try:
                await self.process(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # process() handles a message's own failures; this is a store outage
                # while recording them. The entry stays pending and is taken over.
                log.error("inbound entry %s could not be processed (%s)", item.entry_id, type(exc).__name__)
                log.debug("inbound entry %s failure", item.entry_id, exc_info=True)

    async def process(self, entry: Entry) -> None:
        try:
            msg = InboundMessage.from_json(entry.payload)
        except (ValueError, TypeError, KeyError) as exc:
            log.error("inbound entry %s is not a message (%s); dead-lettered", entry.entry_id, type(exc).__name__)
            await self.store.dead_letter(
                kind="inbound", key=entry.entry_id, payload=entry.payload.decode(errors="replace"), reason=str(exc), attempts=1
            )
            await self.queue.done(entry.entry_id)
            return
        self._in_hand.add(entry.entry_id)
        with context(conversation=msg.conversation, message=msg.key):
            await self._process(entry, msg)

    async def _process(self, entry: Entry, msg: InboundMessage) -> None:
        start = time.perf_counter()
        try:
            async with self.queue.kept(self.consumer, entry.entry_id):
                acknowledged = await self.handle(msg, entry.entry_id)
        except Deferred as exc:
            # Not the message's fault: no attempt is counted. It stays pending and is
            # taken over again after claim_idle_ms.
            log.info("message %s deferred: %s", ref(msg.key), exc)
            return
        except STORE_OUTAGES as exc:
            # Redis or MongoDB is down: not the message's fault, so no attempt is counted
            # (an outage longer than max_attempts takeovers must not dead-letter it). It
            # stays pending and is taken over again after claim_idle_ms.
            self._outage.failed(exc)
            return
        except Exception as exc:
            # The exception's text may quote the customer (a codec error shows the
            # string): its type above DEBUG, the rest only at DEBUG.
            log.debug("message %s failed", ref(msg.key), exc_info=True)
            attempts = int(await self.queue.redis.incr(ATTEMPTS_PREFIX + msg.key))
            await self.queue.redis.expire(ATTEMPTS_PREFIX + msg.key, 86_400)
            if attempts >= self.max_attempts:
                log.error("message %s failed %d times (%s); dead-lettered", ref(msg.key), attempts, type(exc).__name__)
                await self.store.dead_letter(
                    kind="inbound", key=msg.key, payload=msg.to_json(), reason=repr(exc), attempts=attempts
                )
                await self.gate.finished(msg.conversation, msg.key)
                await self.queue.done(entry.entry_id)
            else:
                # Left pending: another read (or another worker) takes it over after
                # claim_idle_ms, which doubles as the retry delay.
                log.warning("message %s failed (attempt %d): %s", ref(msg.key), attempts, type(exc).__name__)
            return
        finally:
            self._in_hand.discard(entry.entry_id)
        self._outage.ok()
        if not acknowledged:
            await self.queue.done(entry.entry_id)
        if self.metrics is not None:
            self.metrics.turn_seconds.labels(msg.channel).observe(time.perf_counter() - start)

    async def handle(self, msg: InboundMessage, entry_id: str = "") -> bool:
        """Handle one message in its conversation's turn; True if the end of the turn
        acknowledged its stream entry ``entry_id`` as well."""
        channel = self.channels(msg.channel, msg.account)
        if channel is not None:
            expanded = await channel.expand(msg)
            if tuple(expanded) != (msg,):
                # A notification: what it announced was queued (or is handled) on its own.
                await self.outbox.enqueue((), handled=msg.key)
                await self.gate.finished(msg.conversation, msg.key)
                return False
        # Whether it was handled and the cached state are read as the turn is taken: one
        # Redis round trip. Nobody else changes them meanwhile: the turn is ours.
        peek = (self.outbox.handled_key(msg.key), self.states.redis_key(msg.conversation))
        async with self.gate.turn(msg.conversation, msg.key, peek=peek) as held, self._text_first(msg):
            handled, cached = held.peeked
            if handled:
                await self.gate.finished(msg.conversation, msg.key)
                return False  # handled before a crash that came before the ack
            created = await self.store.save_inbound(msg)
            state = await self.states.load(
                msg.conversation,
                customer=channel_identity(msg.channel, msg.account, msg.sender),
                channel=msg.channel,
                account=msg.account,
                sender=msg.sender,
                created=created,
                cached=(cached,),
            )
            if msg.extra:
                state.reply_hints = msg.extra
            replies = await self._turn(msg, channel, state)
            outbound = [self._outbound(msg, i, r) for i, r in enumerate(replies)]
            # Both durable before the handled mark; each rides its collection's group commit.
            await asyncio.gather(self.states.write_through(state), self.store.save_outbound_many(outbound))
            event = None
            if self.events is not None:
                records = (msg.key, *("out:" + r.idempotency_key for r in outbound))
                event = ConversationEvent("message", msg.conversation, owner=state.owner, messages=records)
            # State, outbox, handled mark, pending list, lock, ack and event: one script.
            await self._end_of_turn.write(
                message_key=msg.key, state=state, replies=outbound, held=held, entry_id=entry_id, event=event
            )
        return bool(entry_id)

    @contextlib.asynccontextmanager
    async def _text_first(self, msg: InboundMessage) -> AsyncIterator[None]:
        # Text is what customers wait on in real time: local transcription pauses while a
        # text turn is handled. Taken inside the conversation's turn, never while waiting
        # for it: a text behind a voice note of its own conversation must not pause it.
        if self.voice is None or msg.kind is MessageKind.VOICE:
            yield
            return
        with self.voice.text_turn():
            yield

    async def _turn(self, msg: InboundMessage, channel: Channel | None, state: ConversationState) -> list[Reply]:
        text = msg.text if msg.kind is not MessageKind.LOCATION else ""
        if msg.kind is MessageKind.VOICE and self.voice is not None:
            with self._timed("speech"):
                heard = await self.voice.hear(msg, channel)
            # "unavailable": no speech engine here; the media skills acknowledge the note.
            if heard.problem and heard.problem != "unavailable":
                return [Reply(text=self.templates.render("voice_problem", state.language, problem=heard.problem))]
            text = heard.text
            if text and not heard.confident and state.bot_active:
                state.heard, state.heard_message, state.heard_denied = text, msg.key, False
                state.language = detect(text, state.language)
                return [Reply(text=self.templates.render("voice_confirm", state.language, text=text))]
        if text:
            state.language = detect(text, state.language)
        if state.agent:
            return []  # an agent has it: stored, the bot is silent
        # Waiting for an agent: the skills answer what they may (see skills.handoff).
        nlu = await self._understand(msg, text, state)
        heard_before, heard_message, denied = state.heard, state.heard_message, state.heard_denied
        state.heard, state.heard_message, state.heard_denied = "", "", False
        if heard_before and nlu is not None:
            if denied:
                if nlu.intent not in ("affirm", "deny"):  # a bare yes or no after "say it again" corrects nothing
                    await self._corrected(msg, state, heard_before, heard_message, text, "said_again")
            elif nlu.intent == "affirm":
                text = heard_before  # the customer confirmed what the bot heard
                nlu = await self._understand(msg, text, state)
            elif nlu.intent == "deny":
                state.heard, state.heard_message, state.heard_denied = heard_before, heard_message, True
                return [Reply(text=self.templates.render("voice_retry", state.language))]
            else:
                await self._corrected(msg, state, heard_before, heard_message, text, "restated")
        turn = Turn(message=msg, language=state.language, text=text, nlu=nlu, state=state)
        if nlu is not None:
            state.last_intent = nlu.intent
        return list(await self.router.route(turn))

    async def _corrected(
        self, msg: InboundMessage, state: ConversationState, heard: str, voice_note: str, meant: str, how: str
    ) -> None:
        # The same sentence again corrects nothing.
        if self.voice is None or not voice_note or not meant.strip() or meant.strip() == heard.strip():
            return
        await self.voice.corrected(CorrectedTranscript(
            message=voice_note, conversation=msg.conversation, heard=heard, meant=meant.strip(), correction=msg.key,
            language=state.language, how=how,
        ))

    async def _understand(self, msg: InboundMessage, text: str, state: ConversationState) -> ParseResult | None:
        if not text:
            return None
        shortcut = keyword_intent(text)
        if shortcut:
            return ParseResult(text=text, intent=shortcut, confidence=1.0, entities=(), ranking=((shortcut, 1.0),))
        if self.nlu is None:
            return None
        return await self._parse_when_ready(self.nlu, msg, text, state)

    async def _parse_when_ready(
        self, nlu: NluReadiness, msg: InboundMessage, text: str, state: ConversationState
    ) -> ParseResult | None:
        since = nlu.now()
        told = False
        while True:
            verdict = nlu.decide(since)
            if verdict is Wait.ABSENT:
                return None  # no model yet (first training): the keyword layer answers, nothing waits
            if verdict is Wait.READY:
                try:
                    with self._timed("nlu"):
                        return await nlu.client.parse(text)
                except NluUnavailable:
                    nlu.lost()
                    continue
            if verdict is Wait.GIVE_UP:
                log.warning("message %s waited %.0f s for NLU; handed to a person", ref(msg.key), nlu.max_wait_s)
                return ParseResult(text=text, intent=UNDERSTANDING_UNAVAILABLE, confidence=1.0, entities=(), ranking=())
            if verdict is Wait.HOLDING and not told:
                await self._holding_reply(msg, state)
                told = True
            await nlu.wait(max(nlu.next_change_in(since), 0.05))

    async def _holding_reply(self, msg: InboundMessage, state: ConversationState) -> None:
        holding = OutboundMessage(
            channel=msg.channel,
            account=msg.account,
            recipient=msg.sender,
            conversation=msg.conversation,
            idempotency_key=f"{msg.key}#holding",
            text=self.templates.render("nlu_unavailable", state.language),
            in_reply_to=msg.key,
            extra=msg.extra,
        )
        await self.store.save_outbound(holding)
        await self.outbox.enqueue((holding,))  # once per message: the key dedups repeats

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        if self.metrics is None:
            yield
            return
        histogram = self.metrics.nlu_seconds if what == "nlu" else self.metrics.speech_seconds
        start = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            histogram.labels(outcome).observe(time.perf_counter() - start)

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


def _by_conversation(entries: list[Entry]) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[_conversation_of(entry)].append(entry)
    return groups


def _conversation_of(entry: Entry) -> str:
    # A junk payload gets a group of its own and is dead-lettered by process().
    try:
        return str(json.loads(entry.payload)["conversation"])
    except Exception:
        return entry.entry_id

