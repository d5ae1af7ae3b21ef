"""What a worker's turn leaves in Redis, in one script call.

Once a turn's MongoDB writes are durable (the message, the state's write-through, the
replies' records), Redis still has to learn six things: the replies, queued on the
outbox behind their idempotency keys; the inbound message's handled mark; the
conversation's state; the message off its conversation's pending list; the
conversation's lock let go; the stream entry acknowledged and deleted. And the consoles
get their event. Sent one by one these were six round trips a turn, and the gateway's
own CPU follows round trips; here they are one ``EVALSHA``.

The script also makes them atomic: a worker dying before it leaves the message pending
with none of them done (the message is taken over and handled again, its MongoDB writes
being idempotent upserts), after it with all of them done. Before, a worker dying
between the state and the outbox left the new state beside a message to handle again.
The only partial outcome left is a command failing inside the script on a key of the
wrong type; the replies and the handled mark go first, so what is done is exactly-once.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from bot.conversation.events import ConversationEvent
from bot.conversation.ordering import PENDING_PREFIX, RELEASE_LOCK_LUA, HeldTurn
from bot.conversation.state import STATE_TTL_S, ConversationState, StateStore
from bot.messages import OutboundMessage
from bot.outbox import KEY_TTL_S, QUEUE_REPLIES_LUA, Outbox, encoded
from bot.queue import StreamGroup

_END_OF_TURN = QUEUE_REPLIES_LUA + RELEASE_LOCK_LUA + """
-- KEYS[1] outbox stream, KEYS[2] handled mark, KEYS[3] state, KEYS[4] pending list,
-- KEYS[5] lock, KEYS[6] inbound stream, KEYS[7..] idempotency keys
-- ARGV[1] reply ttl, ARGV[2] state json, ARGV[3] state ttl, ARGV[4] message key,
-- ARGV[5] lock token, ARGV[6] group, ARGV[7] entry id ('' = none),
-- ARGV[8] event channel ('' = none), ARGV[9] event, ARGV[10..] payloads
local added = queue_replies(KEYS[1], ARGV[1], 7, 10)
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('LREM', KEYS[4], 1, ARGV[4])
release_lock(KEYS[5], ARGV[5])
if ARGV[7] ~= '' then
  redis.call('XACK', KEYS[6], ARGV[6], ARGV[7])
  redis.call('XDEL', KEYS[6], ARGV[7])
end
if ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
return added
"""


class EndOfTurn:
    def __init__(self, redis: Redis, outbox: Outbox, queue: StreamGroup, *, event_channel: str = "") -> None:
        """``event_channel``: where the consoles' events go ('' = none published)."""
        self.outbox = outbox
        self.queue = queue
        self.event_channel = event_channel
        self._script = redis.register_script(_END_OF_TURN)

    async def write(
        self,
        *,
        message_key: str,
        state: ConversationState,
        replies: Sequence[OutboundMessage],
        held: HeldTurn,
        entry_id: str = "",
        event: ConversationEvent | None = None,
    ) -> int:
        """End the turn (see the module's docstring); returns how many replies were new
        on the outbox. ``entry_id``: the stream entry to acknowledge ('' = none)."""
        keys, payloads = encoded(replies)
        channel = self.event_channel if event is not None else ""
        added = await self._script(
            keys=[
                self.outbox.stream, self.outbox.handled_key(message_key), StateStore.redis_key(state.conversation),
                PENDING_PREFIX + state.conversation, held.lock, self.queue.stream, *keys,
            ],
            args=[
                KEY_TTL_S, state.to_json(), STATE_TTL_S, message_key, held.token, self.queue.group, entry_id,
                channel, event.to_json() if event is not None else "", *payloads,
            ],
        )
        held.released = True
        if entry_id:
            self.queue.forget(entry_id)
        return int(added)
