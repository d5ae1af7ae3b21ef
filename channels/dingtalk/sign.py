"""The robot callback signature: ``sign = base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret))``.

DingTalk puts ``timestamp`` (milliseconds) and ``sign`` in the request headers; a request
is genuine only if both check out and the timestamp is within one hour of our clock.

Docs: https://open.dingtalk.com/document/orgapp/receive-message
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from channels.errors import BadSignature, StaleTimestamp

WINDOW_MS = 3_600_000  # DingTalk's rule: more than one hour off is an illegal request


def compute_sign(timestamp: str, app_secret: str) -> str:
    """The ``sign`` header DingTalk sends with ``timestamp`` for this app secret."""
    key = app_secret.encode("utf-8")
    digest = hmac.new(key, f"{timestamp}\n{app_secret}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_sign(timestamp: str, sign: str, app_secret: str, *, window_ms: int = WINDOW_MS, now_ms: int | None = None) -> None:
    """Raise ``BadSignature`` or ``StaleTimestamp`` unless the headers are genuine and fresh.

    The signature is checked first and in constant time, so a forger learns nothing from
    the answer about which part was wrong.
    """
    if not timestamp or not sign:
        raise BadSignature("timestamp or sign header missing")
    expected = compute_sign(timestamp, app_secret)
    if not hmac.compare_digest(expected.encode("ascii"), sign.strip().encode("utf-8", "replace")):
        raise BadSignature("sign does not match the app secret")
    if not timestamp.isdigit():
        raise StaleTimestamp("timestamp is not a number of milliseconds")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if window_ms > 0 and abs(now - int(timestamp)) > window_ms:
        raise StaleTimestamp(f"timestamp is {abs(now - int(timestamp)) // 1000} s away from now")
