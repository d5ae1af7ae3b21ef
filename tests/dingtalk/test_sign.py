"""The robot callback signature, by DingTalk's documented formula.

DingTalk's page (https://open.dingtalk.com/document/orgapp/receive-message) gives the
formula but no worked vector; the vector below was computed independently with
``printf '1700000000000\\nSECtestsecret' | openssl dgst -sha256 -hmac SECtestsecret -binary | base64``.
"""

from __future__ import annotations

import pytest

from channels.dingtalk.sign import check_sign, compute_sign
from channels.errors import BadSignature, StaleTimestamp

TS = "1700000000000"
SECRET = "SECtestsecret"
VECTOR = "7LVwF0dAF3/+MRRulbpE4y72Ogzykc6bS2nG4I99T4s="


def test_vector() -> None:
    assert compute_sign(TS, SECRET) == VECTOR


def test_valid_inside_window() -> None:
    check_sign(TS, VECTOR, SECRET, now_ms=int(TS))
    check_sign(TS, VECTOR, SECRET, now_ms=int(TS) + 3_600_000)  # exactly one hour: still fine
    check_sign(TS, VECTOR, SECRET, now_ms=int(TS) - 3_600_000)


@pytest.mark.parametrize("offset_ms", [3_600_001, -3_600_001, 86_400_000])
def test_outside_window(offset_ms: int) -> None:
    with pytest.raises(StaleTimestamp):
        check_sign(TS, VECTOR, SECRET, now_ms=int(TS) + offset_ms)


@pytest.mark.parametrize(
    "timestamp,sign,secret",
    [
        (TS, VECTOR[:-2] + "x=", SECRET),  # forged
        (TS, VECTOR, "other-secret"),  # another app's secret
        ("1700000000001", VECTOR, SECRET),  # timestamp changed after signing
        (TS, "", SECRET),
        ("", VECTOR, SECRET),
        (TS, "签名", SECRET),  # non-ASCII must not crash compare_digest
    ],
)
def test_rejected(timestamp: str, sign: str, secret: str) -> None:
    with pytest.raises(BadSignature):
        check_sign(timestamp, sign, secret, now_ms=int(TS))
