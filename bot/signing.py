"""Signing keys every gateway process shares: configured, or made once and kept in Redis."""

from __future__ import annotations

import secrets

from redis.asyncio import Redis


async def shared_key(redis: Redis, name: str) -> bytes | None:
    """The random key stored under ``name`` (created by whichever process asks first);
    None if Redis lost it between the write and the read."""
    await redis.set(name, secrets.token_hex(32), nx=True)
    raw = await redis.get(name)
    if raw is None:
        return None
    return raw if isinstance(raw, bytes) else str(raw).encode()
