"""WeChat's callback signatures and AES message encryption (WXBizMsgCrypt).

The AES part is wechatpy's; the signature comparison is ours because wechatpy compares
with ``!=`` and we want constant time. The same scheme serves WeCom (the id inside the
ciphertext is the CorpID instead of the AppID), so :mod:`channels.wecom` reuses this.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

from channels.errors import BadSignature, DecryptFailed, StaleTimestamp
from bot.errors import ConfigError


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted lexicographically and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(expected_parts: tuple[str, ...], given: str) -> None:
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, and a
    # stranger choosing the signature must get a 403, not a TypeError.
    given_bytes = given.lower().encode("utf-8", "replace")
    if not given or not hmac.compare_digest(sha1_signature(*expected_parts).encode(), given_bytes):
        raise BadSignature("signature does not match the configured token")


def check_timestamp(timestamp: str, window_s: int, now: float | None = None) -> None:
    """Reject requests whose timestamp is more than ``window_s`` away from now (0 = off)."""
    if window_s <= 0:
        return
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise StaleTimestamp("timestamp is not a number") from exc
    if abs((time.time() if now is None else now) - ts) > window_s:
        raise StaleTimestamp(f"timestamp {ts} is outside the {window_s} s window")


def aes_key_from_encoding_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("encoding_aes_key is not valid base64") from exc
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ConfigError("encoding_aes_key must be 43 characters (a 32-byte key)")
    return key


class MessageCrypto:
    """Sign, encrypt and decrypt messages for one account (AppID or CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._prp = PrpCrypto(aes_key_from_encoding_key(encoding_aes_key))

    def verify_and_decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        check_signature((self.token, timestamp, nonce, encrypted), msg_signature)
        return self.decrypt(encrypted)

    def decrypt(self, encrypted: str) -> str:
        try:
            plain = self._prp.decrypt(encrypted, self.receive_id)
        except InvalidAppIdException as exc:
            raise DecryptFailed("decrypted payload is addressed to another AppID/CorpID") from exc
        except Exception as exc:  # padding, base64, UTF-8: all mean "wrong key or junk"
            raise DecryptFailed(f"cannot decrypt payload ({type(exc).__name__})") from exc
        return plain if isinstance(plain, str) else plain.decode()

    def encrypt(self, plaintext: str, *, timestamp: str | None = None, nonce: str | None = None) -> tuple[str, str, str, str]:
        """Encrypt ``plaintext``; returns (encrypted, msg_signature, timestamp, nonce)."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(int.from_bytes(os.urandom(4), "big"))
        encrypted = self._prp.encrypt(plaintext, self.receive_id)
        encrypted = encrypted if isinstance(encrypted, str) else encrypted.decode()
        return encrypted, sha1_signature(self.token, timestamp, nonce, encrypted), timestamp, nonce
