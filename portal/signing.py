"""Detached Ed25519 signatures on the PDF summaries the portal mails out.

The mail carries ``summary.pdf`` and ``summary.pdf.sig`` (the 64 raw signature bytes
over the PDF's exact bytes). The public key is published at ``/portal/signing-key.pem``
and its fingerprint is printed in the PDF and the mail, so a recipient checks with
standard tools, no Kefu needed::

    openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin -in summary.pdf -sigfile summary.pdf.sig

A detached signature rather than one embedded in the PDF: an embedded (PAdES) signature
needs an X.509 certificate that a reader trusts, which a self-hosted gateway does not
have; a raw key whose fingerprint the customer can compare on the portal needs nothing.

The key is a configured PEM file (``portal.summary_key_file``, stable across Redis
resets) or, by default, a seed made once and shared by every process through Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from redis.asyncio import Redis

from bot.signing import shared_key
from portal.errors import PortalError

SEED_KEY = "kefu:portal:summary_signing_seed"


class SigningUnavailable(PortalError):
    code = "signing_unavailable"
    status = 503


class SummarySigner:
    def __init__(self, redis: Redis, *, key_file: str = "") -> None:
        self.redis = redis
        self.key_file = key_file
        self._key: Ed25519PrivateKey | None = None

    async def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = await (self._from_file() if self.key_file else self._from_redis())
        return self._key

    async def _from_file(self) -> Ed25519PrivateKey:
        pem = await asyncio.to_thread(Path(self.key_file).read_bytes)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningUnavailable("portal.summary_key_file must hold an Ed25519 private key")
        return key

    async def _from_redis(self) -> Ed25519PrivateKey:
        seed = await shared_key(self.redis, SEED_KEY)
        if seed is None:
            raise SigningUnavailable("no summary-signing key available")
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed.decode())[:32])

    async def sign(self, data: bytes) -> bytes:
        return (await self.key()).sign(data)

    async def public_pem(self) -> bytes:
        return public_pem((await self.key()).public_key())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the public key's PEM, in groups a person can read aloud and compare."""
    digest = hashlib.sha256(pem).hexdigest()[:32].upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def verify(data: bytes, signature: bytes, pem: bytes) -> bool:
    """Whether ``signature`` is the key's signature over exactly ``data``."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
