"""Server-side sessions in Redis, their cookie, and the CSRF token each one carries.

The cookie holds only a random id; Redis keeps the session under the id's SHA-256, so
a copy of Redis gives nobody a usable cookie. Signing in always issues a new id (no
session fixation); signing out deletes the record. Every session, anonymous ones too
(a sign-in form needs a CSRF token), carries its own synchroniser token that each
state-changing request must echo in a form field or the ``X-CSRF-Token`` header.
Each web app names its own cookie and Redis keys (:class:`SessionScheme`), so a console
session never opens the portal and the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class SessionScheme:
    """Where one web app keeps its sessions: the cookie (name, path) and the Redis keys."""

    cookie: str
    path: str
    prefix: str  # + the session id's SHA-256: the session record
    user_prefix: str  # + the user: a set of that user's session keys

    def set_cookie(self, response: web.StreamResponse, session: Session, *, secure: bool, max_age: int) -> None:
        response.set_cookie(self.cookie, session.sid, max_age=max_age, path=self.path, httponly=True, samesite="Lax", secure=secure)

    def clear_cookie(self, response: web.StreamResponse, *, secure: bool) -> None:
        response.del_cookie(self.cookie, path=self.path, secure=secure, httponly=True, samesite="Lax")


def secure_cookies(request: web.Request, configured: bool | None) -> bool:
    """Whether cookies get ``Secure``: as configured, else whenever the request came over https."""
    return request.secure if configured is None else configured


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    csrf: str
    user: str = ""  # empty: not signed in
    created_at: float = field(default_factory=time.time)
    flash: str = ""  # one message shown on the next page

    def to_json(self) -> str:
        return json.dumps({"csrf": self.csrf, "user": self.user, "created_at": self.created_at, "flash": self.flash})

    def csrf_ok(self, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.csrf.encode())


SESSION = web.RequestKey("web_session", Session)


class SessionStore:
    def __init__(self, redis: Redis, scheme: SessionScheme, *, ttl_s: int, anonymous_ttl_s: int = 3600) -> None:
        self.redis = redis
        self.scheme = scheme
        self.ttl_s = ttl_s
        self.anonymous_ttl_s = anonymous_ttl_s
        self.prefix = scheme.prefix
        self.user_prefix = scheme.user_prefix

    def _key(self, sid: str) -> str:
        return self.prefix + hashlib.sha256(sid.encode()).hexdigest()

    async def load(self, sid: str) -> Session | None:
        if not sid or len(sid) > 128:
            return None
        raw = await self.redis.get(self._key(sid))
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(sid=sid, csrf=str(data["csrf"]), user=str(data["user"]), created_at=float(data["created_at"]), flash=str(data.get("flash", "")))

    async def new(self, user: str = "") -> Session:
        session = Session(sid=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), user=user)
        await self.save(session)
        if user:
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(self.user_prefix + user, self._key(session.sid))
            pipe.expire(self.user_prefix + user, self.ttl_s)
            await pipe.execute()
        return session

    async def end_all(self, user: str, *, keep: Session | None = None) -> None:
        """Sign ``user`` out everywhere (a new password, an admin's reset), except ``keep``."""
        members: Any = await self.redis.smembers(self.user_prefix + user)
        kept = self._key(keep.sid).encode() if keep is not None else b""
        doomed = [m for m in members if m != kept]
        if doomed:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(*doomed)
            pipe.srem(self.user_prefix + user, *doomed)
            await pipe.execute()

    async def save(self, session: Session) -> None:
        ttl = self.ttl_s if session.user else self.anonymous_ttl_s
        await self.redis.set(self._key(session.sid), session.to_json(), ex=ttl)

    async def delete(self, session: Session) -> None:
        await self.redis.delete(self._key(session.sid))

    async def rotate(self, old: Session | None, user: str) -> Session:
        """A fresh id and CSRF token for a user who just signed in; the old one is gone."""
        if old is not None:
            await self.delete(old)
        return await self.new(user)

    async def set_flash(self, session: Session, message: str) -> Session:
        updated = replace(session, flash=message)
        await self.save(updated)
        return updated


async def load_session(request: web.Request, sessions: SessionStore) -> Session | None:
    """The session the request's cookie names, kept on the request as ``SESSION``."""
    session = await sessions.load(request.cookies.get(sessions.scheme.cookie, ""))
    if session is not None:
        request[SESSION] = session
    return session


async def take_flash(request: web.Request, sessions: SessionStore) -> str:
    """The session's one-time message, removed from it now that a page shows it."""
    if SESSION not in request or not request[SESSION].flash:
        return ""
    session = request[SESSION]
    request[SESSION] = replace(session, flash="")
    await sessions.save(request[SESSION])
    return session.flash
