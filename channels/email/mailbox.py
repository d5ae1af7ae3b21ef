"""IMAP intake: one poller per mailbox, a persisted UID cursor, IDLE with a polling fallback.

* Exactly one process polls a mailbox: a Redis lock (``SET NX PX``) renewed while the
  session runs; a process that loses it stops fetching at once.
* Nothing lost, nothing repeated across restarts: the cursor (UIDVALIDITY + last UID
  handed over) lives in Redis and moves only after a mail was queued. A crash between
  the two re-fetches that one mail, and the inbound queue's dedup key drops it.
* New mail is noticed through IDLE where the server offers it, else by polling.

Docs: https://www.rfc-editor.org/rfc/rfc3501 (UID, UIDVALIDITY)
      https://www.rfc-editor.org/rfc/rfc2177 (IDLE)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aioimaplib
from redis.asyncio import Redis

from bot.logs import Outage

log = logging.getLogger(__name__)

OnMail = Callable[[int, int, bytes], Awaitable[None]]  # (uidvalidity, uid, raw)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*?UID (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


class ImapError(Exception):
    """The IMAP server refused a command or the session broke."""


class LockLost(Exception):
    """Another process took the mailbox lock (ours expired): stop fetching."""


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    timeout_s: float = 30.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ImapSettings:
        use_ssl = bool(data.get("ssl", True))
        return cls(
            host=str(data["host"]),
            port=int(data.get("port", 993 if use_ssl else 143)),
            ssl=use_ssl,
            username=str(data.get("username", "")),
            password=str(data.get("password", "")),
            folder=str(data.get("folder", "INBOX")),
            timeout_s=float(data.get("timeout_s", 30.0)),
        )


class MailboxLock:
    """A Redis lock with an owner token, renewed by its holder."""

    def __init__(self, redis: Redis, key: str, *, ttl_ms: int = 30_000) -> None:
        self._redis = redis
        self.key = key
        self.ttl_ms = ttl_ms
        self.owner = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        return bool(await self._redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])


class Cursor:
    """UIDVALIDITY and the last UID handed to the pipeline, persisted in Redis."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self.key = key

    async def get(self) -> tuple[int, int] | None:
        data = await self._redis.hmget(self.key, ["uidvalidity", "last_uid"])
        if data[0] is None or data[1] is None:
            return None
        return int(data[0]), int(data[1])

    async def set(self, uidvalidity: int, last_uid: int) -> None:
        await self._redis.hset(self.key, mapping={"uidvalidity": uidvalidity, "last_uid": last_uid})


class ImapIntake:
    """Fetches a mailbox's new mail in UID order and hands each to ``on_mail``."""

    def __init__(
        self,
        settings: ImapSettings,
        *,
        lock: MailboxLock,
        cursor: Cursor,
        on_mail: OnMail,
        name: str = "",
        initial: str = "all",
        use_idle: bool = True,
        poll_s: float = 30.0,
        idle_s: float = 300.0,
        batch: int = 50,
        retry_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.lock = lock
        self.cursor = cursor
        self._on_mail = on_mail
        self.name = name or f"{settings.username}@{settings.host}/{settings.folder}"
        self.initial = initial  # "all": a first start takes the mail already there; "new": only later mail
        self.use_idle = use_idle
        self.poll_s = poll_s
        self.idle_s = idle_s
        self.batch = batch
        self.retry_s = retry_s
        self.handed_over = 0  # mails passed to on_mail (tests, metrics)
        self._tls: ssl.SSLContext | None = None

    async def run(self, stop: asyncio.Event) -> None:
        # IMAP or Redis unreachable: one line when it starts failing, one when it is back.
        outage = Outage(log, f"email {self.name} intake (IMAP or Redis)")
        while not stop.is_set():
            try:
                if not await self.lock.acquire():
                    outage.ok()
                    await _sleep_or_stop(stop, min(self.retry_s, self.lock.ttl_ms / 3000))
                    continue
                log.info("email %s: this process polls the mailbox", self.name)
                try:
                    await self._session_with_lock(stop)
                finally:
                    with contextlib.suppress(Exception):
                        await self.lock.release()
                outage.ok()
            except asyncio.CancelledError:
                raise
            except LockLost:
                log.warning("email %s: mailbox lock lost; another process polls now", self.name)
            except Exception as exc:
                outage.failed(exc)
                await _sleep_or_stop(stop, self.retry_s)

    async def _session_with_lock(self, stop: asyncio.Event) -> None:
        lost = asyncio.Event()

        async def keep_lock() -> None:
            while True:
                await asyncio.sleep(self.lock.ttl_ms / 3000)
                if not await self.lock.renew():
                    lost.set()
                    return

        renewer = asyncio.create_task(keep_lock())
        session = asyncio.create_task(self._session(stop))
        lost_wait = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({session, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            if lost.is_set() and not session.done():
                session.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session
                raise LockLost()
            session.result()
        finally:
            for task in (renewer, lost_wait, session):
                task.cancel()
            await asyncio.gather(renewer, lost_wait, session, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[aioimaplib.IMAP4]:
        s = self.settings
        imap: aioimaplib.IMAP4
        if s.ssl:
            if self._tls is None:  # the CA bundle is read from disk: once, in a thread
                self._tls = await asyncio.to_thread(ssl.create_default_context)
            imap = aioimaplib.IMAP4_SSL(host=s.host, port=s.port, timeout=s.timeout_s, ssl_context=self._tls)
        else:
            imap = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=s.timeout_s)
        await imap.wait_hello_from_server()
        try:
            _ok(await imap.login(s.username, s.password), "LOGIN")
            yield imap
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(imap.logout(), 5)

    async def _session(self, stop: asyncio.Event) -> None:
        async with self._connect() as imap:
            selected = _ok(await imap.select(self.settings.folder), "SELECT")
            uidvalidity = _uidvalidity(selected.lines)
            idle = self.use_idle and imap.has_capability("IDLE")
            while not stop.is_set():
                await self.fetch_new(imap, uidvalidity)
                if idle:
                    await self._idle(imap, stop)
                else:
                    await _sleep_or_stop(stop, self.poll_s)
                    _ok(await imap.noop(), "NOOP")  # also tells the server to report new mail

    async def fetch_new(self, imap: aioimaplib.IMAP4, uidvalidity: int) -> int:
        """Hand every mail above the cursor to ``on_mail``, in UID order."""
        stored = await self.cursor.get()
        if stored is None or stored[0] != uidvalidity:
            if stored is not None:
                log.warning("email %s: UIDVALIDITY changed (%d -> %d); starting over", self.name, stored[0], uidvalidity)
            start = 0
            if self.initial == "new":
                start = await self._highest_uid(imap)
            await self.cursor.set(uidvalidity, start)
            last = start
        else:
            last = stored[1]
        found = _ok(await imap.uid_search(f"UID {last + 1}:*", charset=None), "UID SEARCH")
        # "n:*" always matches the highest UID, even when it is below n.
        uids = sorted(u for u in _numbers(found.lines) if u > last)
        for i in range(0, len(uids), self.batch):
            chunk = uids[i : i + self.batch]
            fetched = _ok(await imap.uid("fetch", ",".join(map(str, chunk)), "(UID BODY.PEEK[])"), "UID FETCH")
            for uid, raw in sorted(_literals(fetched.lines)):
                await self._on_mail(uidvalidity, uid, raw)
                await self.cursor.set(uidvalidity, uid)
                self.handed_over += 1
        return len(uids)

    async def _highest_uid(self, imap: aioimaplib.IMAP4) -> int:
        found = _ok(await imap.uid_search("ALL", charset=None), "UID SEARCH")
        return max(_numbers(found.lines), default=0)

    async def _idle(self, imap: aioimaplib.IMAP4, stop: asyncio.Event) -> None:
        idle = await imap.idle_start(timeout=self.idle_s)
        push = asyncio.ensure_future(imap.wait_server_push(timeout=self.idle_s))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({push, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            push.cancel()
            stopping.cancel()
            imap.idle_done()
            await asyncio.wait_for(idle, self.settings.timeout_s)


def _ok(response: Any, command: str) -> Any:
    if getattr(response, "result", "") != "OK":
        raise ImapError(f"{command}: {getattr(response, 'result', '?')} {getattr(response, 'lines', '')!r}"[:300])
    return response


def _uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        match = _UIDVALIDITY.search(bytes(line))
        if match:
            return int(match.group(1))
    raise ImapError("SELECT answered without UIDVALIDITY")


def _numbers(lines: list[bytes]) -> list[int]:
    for line in lines:
        parts = bytes(line).split()
        if parts and all(p.isdigit() for p in parts):
            return [int(p) for p in parts]
    return []


def _literals(lines: list[Any]) -> list[tuple[int, bytes]]:
    """(uid, message) pairs from a UID FETCH answer: a FETCH line, then its literal."""
    out: list[tuple[int, bytes]] = []
    uid: int | None = None
    for line in lines:
        if isinstance(line, bytearray):
            if uid is not None:
                out.append((uid, bytes(line)))
                uid = None
            continue
        match = _FETCH_HEAD.match(line)
        if match:
            uid = int(match.group(1))
    return out


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
