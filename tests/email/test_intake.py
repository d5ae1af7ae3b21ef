"""The IMAP intake against a real dovecot: restarts, crashes and two pollers.

Messages go into the real inbound queue (Redis), whose dedup key is what makes a mail
re-fetched after a crash harmless; the stream length is the number handed to workers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from bot.messages import InboundMessage, MessageKind
from bot.queue import InboundQueue
from channels.email.mailbox import Cursor, ImapIntake, ImapSettings, MailboxLock
from channels.email.parser import parse_mail
from channels.email.simulator import customer_mail
from tests.email.conftest import ADDRESS, CUSTOMER
from tests.email.servers import Dovecot

STREAM = "test:email:inbound"


class Crash(Exception):
    pass


def intake(redis: Redis, dovecot: Dovecot, on_mail: Any, **kw: Any) -> ImapIntake:
    return ImapIntake(
        ImapSettings.from_mapping(dovecot.imap_section("support")),
        lock=MailboxLock(redis, "test:email:lock", ttl_ms=kw.pop("ttl_ms", 3000)),
        cursor=Cursor(redis, "test:email:cursor"),
        on_mail=on_mail,
        retry_s=0.1,
        poll_s=0.2,
        **kw,
    )


def queueing(queue: InboundQueue, seen: list[int]) -> Any:
    async def on_mail(uidvalidity: int, uid: int, raw: bytes) -> None:
        mail = parse_mail(raw)
        msg = InboundMessage(channel="email", account="t", sender=mail.sender, conversation="c", kind=MessageKind.TEXT, platform_id=mail.message_id, timestamp=0.0, text=mail.text)
        await queue.enqueue((msg,))
        seen.append(uid)

    return on_mail


def fill(dovecot: Dovecot, n: int) -> list[str]:
    ids = []
    for i in range(n):
        mid, raw = customer_mail(CUSTOMER, ADDRESS, f"mail {i}")
        dovecot.deliver("support", raw)
        ids.append(mid)
    return ids


async def run_until(task_intake: ImapIntake, stop: asyncio.Event, done: Any, timeout_s: float = 15.0) -> None:
    task = asyncio.create_task(task_intake.run(stop))
    try:
        for _ in range(int(timeout_s / 0.02)):
            if done():
                return
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        raise AssertionError("intake did not get there")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_crash_after_queueing_before_cursor_moves(redis: Redis, dovecot: Dovecot) -> None:
    """The worst moment: a mail is queued but the cursor not yet moved. Restart: no loss, no repeat."""
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    fill(dovecot, 12)
    seen: list[int] = []
    base = queueing(queue, seen)

    async def crashing(uidvalidity: int, uid: int, raw: bytes) -> None:
        await base(uidvalidity, uid, raw)
        if uid == 5:
            raise Crash("process died right after queueing mail 5")

    first = intake(redis, dovecot, crashing)
    stop = asyncio.Event()
    await run_until(first, stop, lambda: 5 in seen)
    assert await redis.xlen(STREAM) == 5
    # A new process: fresh objects, same Redis.
    second = intake(redis, dovecot, queueing(queue, seen))
    await run_until(second, asyncio.Event(), lambda: len(seen) >= 13)
    assert seen.count(5) == 2  # fetched again after the crash...
    assert await redis.xlen(STREAM) == 12  # ...but queued once; nothing lost


async def test_killed_mid_fetch_then_restarted(redis: Redis, dovecot: Dovecot) -> None:
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    fill(dovecot, 30)
    seen: list[int] = []
    base = queueing(queue, seen)

    async def slow(uidvalidity: int, uid: int, raw: bytes) -> None:
        await asyncio.sleep(0.01)
        await base(uidvalidity, uid, raw)

    first = intake(redis, dovecot, slow, batch=10)
    task = asyncio.create_task(first.run(asyncio.Event()))
    # Bounded: an intake that dies or stalls fails the test with its own error instead of
    # leaving it waiting for ever (a clean-clone run once hung here).
    async with asyncio.timeout(30):
        while len(seen) < 13:
            if task.done():
                task.result()
                raise AssertionError(f"the intake stopped after {len(seen)} mails")
            await asyncio.sleep(0.005)
    task.cancel()  # killed in the middle of the second fetched batch
    await asyncio.gather(task, return_exceptions=True)
    await redis.delete("test:email:lock")  # a killed process leaves its lock to expire; skip the wait
    second = intake(redis, dovecot, queueing(queue, seen), batch=10)
    await run_until(second, asyncio.Event(), lambda: len(set(seen)) >= 30)
    assert sorted(set(seen)) == list(range(1, 31))
    assert await redis.xlen(STREAM) == 30


async def test_only_one_process_polls_a_mailbox(redis: Redis, dovecot: Dovecot) -> None:
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    fill(dovecot, 8)
    seen_a: list[int] = []
    seen_b: list[int] = []
    a = intake(redis, dovecot, queueing(queue, seen_a))
    b = intake(redis, dovecot, queueing(queue, seen_b))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
    for _ in range(500):
        if len(seen_a) + len(seen_b) >= 8:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert sorted(seen_a + seen_b) == list(range(1, 9))
    assert not (seen_a and seen_b)  # one of them did all the work
    assert await redis.xlen(STREAM) == 8


async def test_lock_is_renewed_and_lost_lock_stops_fetching(redis: Redis, dovecot: Dovecot) -> None:
    seen: list[int] = []
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    a = intake(redis, dovecot, queueing(queue, seen), ttl_ms=600)
    stop = asyncio.Event()
    task = asyncio.create_task(a.run(stop))
    await asyncio.sleep(1.5)  # more than two TTLs: only renewal keeps it
    assert (await redis.get("test:email:lock")) == a.lock.owner.encode()
    await redis.set("test:email:lock", "someone-else", px=5000)  # taken over (e.g. our renewals stalled)
    await asyncio.sleep(0.6)
    fill(dovecot, 2)
    await asyncio.sleep(1.0)
    assert seen == []  # a process without the lock fetches nothing
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_initial_new_skips_existing_mail(redis: Redis, dovecot: Dovecot) -> None:
    queue = InboundQueue(redis, STREAM, dedup_ttl_s=3600, claim_idle_ms=1000)
    fill(dovecot, 3)
    seen: list[int] = []
    a = intake(redis, dovecot, queueing(queue, seen), initial="new")
    stop = asyncio.Event()
    task = asyncio.create_task(a.run(stop))
    for _ in range(200):
        if await a.cursor.get() is not None:
            break
        await asyncio.sleep(0.02)
    fill(dovecot, 1)
    for _ in range(300):
        if seen:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert seen == [4]
