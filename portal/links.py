"""One-time sign-in links to the portal: signed, short-lived, single use, bound to a customer.

A link carries ``<nonce>.<expires>.<mac>``; the customer's id is never in the URL.
Redis keeps the nonce's SHA-256 -> customer (and invited member) until the link
expires, and ``GETDEL`` makes the first use the only one, in every web process. Opening
the link (GET) only checks it and asks the person to continue; continuing (a POST with
the page's CSRF token) uses it, so a chat app fetching the URL for a link preview does
not use it up. The MAC (HMAC-SHA256 over nonce, expiry, customer and member) binds the
link to the grant Redis returned: a record moved or altered in Redis does not sign
anybody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.signing import shared_key
from portal.errors import LinkRefused

PREFIX = "kefu:portal:link:"
SECRET_KEY = "kefu:portal:link_secret"


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a used link signs in: the customer, and the invited colleague if it is one."""

    customer: str
    member: str = ""  # empty: the customer's own account


class SignInLinks:
    def __init__(
        self, redis: Redis, *, public_url: str, ttl_s: float = 900.0, secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.public_url = public_url.rstrip("/")
        self.ttl_s = ttl_s
        self._secret = secret
        self.clock = clock

    async def secret(self) -> bytes:
        """The configured key, or one random key shared by every process through Redis."""
        if self._secret is None:
            self._secret = await shared_key(self.redis, SECRET_KEY)
            if self._secret is None:
                raise LinkRefused("no link-signing key available")
        return self._secret

    async def _mac(self, nonce: str, expires: int, grant: Grant) -> str:
        body = f"{nonce}.{expires}.{grant.customer}.{grant.member}".encode()
        digest = hmac.new(await self.secret(), body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def issue(self, grant: Grant, *, ttl_s: float | None = None) -> str:
        """A new link's URL (absolute when the gateway knows its public URL)."""
        ttl = self.ttl_s if ttl_s is None else ttl_s
        nonce = secrets.token_urlsafe(18)
        expires = int(self.clock() + ttl)
        mac = await self._mac(nonce, expires, grant)
        record = json.dumps({"customer": grant.customer, "member": grant.member})
        await self.redis.set(PREFIX + _digest(nonce), record, ex=max(int(ttl), 1))
        return f"{self.public_url}/portal/s/{nonce}.{expires}.{mac}"

    async def check(self, token: str) -> Grant:
        """The grant a link carries, left unused (the page that asks to continue);
        LinkRefused when forged, expired or used."""
        return await self._grant(token, use=False)

    async def redeem(self, token: str) -> Grant:
        """The grant a link carries, used up; LinkRefused when forged, expired or used."""
        return await self._grant(token, use=True)

    async def _grant(self, token: str, *, use: bool) -> Grant:
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 200 or not parts[1].isdigit():
            raise LinkRefused("malformed sign-in link")
        nonce, expires_s, mac = parts
        if int(expires_s) < self.clock():
            raise LinkRefused("the sign-in link has expired")
        key = PREFIX + _digest(nonce)
        raw = await (self.redis.getdel(key) if use else self.redis.get(key))
        if raw is None:
            raise LinkRefused("the sign-in link was used already or is unknown")
        data = json.loads(raw)
        grant = Grant(str(data["customer"]), str(data.get("member", "")))
        if not hmac.compare_digest(mac, await self._mac(nonce, int(expires_s), grant)):
            raise LinkRefused("the sign-in link's signature does not match")
        return grant


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()
