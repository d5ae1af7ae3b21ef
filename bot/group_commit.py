"""Group commits to one MongoDB collection: concurrent writers share one ``bulk_write``.

Every turn the workers handle writes the same few documents (the message, its
conversation, the replies, the sent marks). One command per write costs a round trip
each, and on the embedded MongoDB-protocol server a command costs milliseconds of its
CPU whatever it carries. Here each caller hands over its operations and waits; the
operations gathered while the previous command was in flight go out together as one
unordered ``bulk_write``. Alone, a write costs one turn of the event loop more; under
load, N writers cost one command.

A batched write isolates its items. A write error on the server (``BulkWriteError``)
fails only the callers whose operations it names; an error raised before the command
is sent (a document BSON cannot encode: text with a lone surrogate) makes each caller's
part go again alone, so only the poison one fails. A lost connection fails everyone
at once: retrying piece by piece cannot help, and the callers treat it as an outage.

Only idempotent operations belong here (upserts keyed by ``_id``, ``$set``,
``$setOnInsert``, ``$max``): a part retried alone may already have been applied, and
an unordered batch may apply its operations in any order, so a caller must not have
two writes to one document in flight at once (the conversation's turn ensures that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ConnectionFailure, WriteError

from bot.mongo import Document


@dataclass
class _Waiter:
    ops: Sequence[UpdateOne]
    future: asyncio.Future[list[bool]]


@dataclass
class _Outcome:
    upserted: set[int] = field(default_factory=set)
    errors: dict[int, Document] = field(default_factory=dict)


class GroupCommit:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        self._pending: list[_Waiter] = []
        self._flushing: asyncio.Task[None] | None = None
        self.commands = 0  # bulk writes sent (for tests and benchmarks)

    async def write(self, ops: Sequence[UpdateOne]) -> list[bool]:
        """Apply ``ops`` in the next group commit; for each, whether it inserted a
        document (an upsert that found none). Raises ``pymongo.errors.WriteError`` if
        the server refused one of them, ``ConnectionFailure`` when it is unreachable."""
        if not ops:
            return []
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiter(ops, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        # One command in flight at a time: what arrives meanwhile rides the next one.
        try:
            while self._pending:
                await asyncio.sleep(0)  # let the writers of this loop turn join
                batch, self._pending = self._pending, []
                await self._commit(batch)
        except BaseException as exc:
            _fail(self._pending, exc)
            self._pending = []
            raise
        finally:
            self._flushing = None

    async def _commit(self, batch: list[_Waiter]) -> None:
        await commit_isolating(batch, self._send_batch, self._settle, outage=(ConnectionFailure,))

    async def _send_batch(self, batch: list[_Waiter]) -> _Outcome:
        return await self._send([op for waiter in batch for op in waiter.ops])

    @staticmethod
    def _settle(batch: list[_Waiter], outcome: _Outcome) -> None:
        offset = 0
        for waiter in batch:
            indexes = range(offset, offset + len(waiter.ops))
            offset += len(waiter.ops)
            if waiter.future.done():
                continue
            refused = [outcome.errors[i] for i in indexes if i in outcome.errors]
            if refused:
                first = refused[0]
                waiter.future.set_exception(WriteError(str(first.get("errmsg", "write refused")), first.get("code"), first))
            else:
                waiter.future.set_result([i in outcome.upserted for i in indexes])

    async def _send(self, ops: list[UpdateOne]) -> _Outcome:
        self.commands += 1
        try:
            result = await self.collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            details: Mapping[str, Any] = exc.details
            return _Outcome(
                upserted={int(u["index"]) for u in details.get("upserted", ())},
                errors={int(e["index"]): e for e in details.get("writeErrors", ())},
            )
        return _Outcome(upserted={int(i) for i in result.upserted_ids or ()})


class Waiter(Protocol):
    """A caller of a group commit, waiting for its part's outcome."""

    @property
    def future(self) -> asyncio.Future[Any]: ...


W = TypeVar("W", bound=Waiter)
R = TypeVar("R")


async def commit_isolating(
    batch: list[W],
    send: Callable[[list[W]], Awaitable[R]],
    settle: Callable[[list[W], R], None],
    *,
    outage: tuple[type[BaseException], ...],
    on_split: Callable[[int, BaseException], None] | None = None,
) -> None:
    """Send ``batch`` as one command and ``settle`` its waiters from the result, so that
    one caller's poison never fails another's: an ``outage`` (the connection) fails them
    all at once, since retrying piece by piece cannot help; any other error makes each
    waiter's part go again alone (``on_split`` is told first), so only the poison one
    fails. The MongoDB group commit here and the Redis one of the inbound queue both
    commit this way."""
    try:
        result = await send(batch)
    except outage as exc:
        _fail(batch, exc)
        return
    except Exception as exc:
        if len(batch) == 1:
            _fail(batch, exc)
            return
        if on_split is not None:
            on_split(len(batch), exc)
        await asyncio.gather(*(commit_isolating([w], send, settle, outage=outage, on_split=on_split) for w in batch))
        return
    except BaseException as exc:
        _fail(batch, exc)
        raise
    settle(batch, result)


def _fail(batch: Sequence[Waiter], exc: BaseException) -> None:
    for waiter in batch:
        if waiter.future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            waiter.future.cancel()  # a future does not take a CancelledError as its exception
        else:
            waiter.future.set_exception(exc)
