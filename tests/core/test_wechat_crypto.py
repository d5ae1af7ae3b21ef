"""WeChat's official message-encryption sample vector, plus signature edge cases.

Source: Tencent's WXBizMsgCrypt Python sample (Sample.py, jonyqin, 2014), downloadable
from the WeChat Official Account docs, "消息加解密说明":
https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
"""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from channels.errors import BadSignature, DecryptFailed, StaleTimestamp
from channels.wechat.crypto import MessageCrypto, check_signature, check_timestamp, sha1_signature
from channels.xml import parse_flat_xml

OFFICIAL = {
    "token": "spamtest",
    "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "app_id": "wx2c2769f8efd9abc2",
    "timestamp": "1409735669",
    "nonce": "1320562132",
    "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    "encrypt": (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9Fr"
        "XpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzj"
        "lpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD"
        "1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
    ),
}


def official_crypto(**override: str) -> MessageCrypto:
    v = {**OFFICIAL, **override}
    return MessageCrypto(v["token"], v["encoding_aes_key"], v["app_id"])


def test_official_vector_signature() -> None:
    o = OFFICIAL
    assert sha1_signature(o["token"], o["timestamp"], o["nonce"], o["encrypt"]) == o["msg_signature"]


def test_official_vector_decrypts_to_the_documented_message() -> None:
    o = OFFICIAL
    plain = official_crypto().verify_and_decrypt(o["encrypt"], o["msg_signature"], o["timestamp"], o["nonce"])
    fields = parse_flat_xml(plain)
    assert fields["ToUserName"] == "gh_10f6c3c3ac5a"
    assert fields["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert fields["Content"] == "abcdteT"
    assert fields["MsgId"] == "6054768590064713728"


def test_official_vector_forged_signature_rejected() -> None:
    o = OFFICIAL
    forged = "0" + o["msg_signature"][1:]
    with pytest.raises(BadSignature):
        official_crypto().verify_and_decrypt(o["encrypt"], forged, o["timestamp"], o["nonce"])


def test_official_vector_wrong_aes_key_fails_cleanly() -> None:
    o = OFFICIAL
    crypto = official_crypto(encoding_aes_key="ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut")
    with pytest.raises(DecryptFailed):
        crypto.verify_and_decrypt(o["encrypt"], o["msg_signature"], o["timestamp"], o["nonce"])


def test_official_vector_other_app_id_refused() -> None:
    o = OFFICIAL
    with pytest.raises(DecryptFailed, match="another AppID"):
        official_crypto(app_id="wx0000000000000000").verify_and_decrypt(
            o["encrypt"], o["msg_signature"], o["timestamp"], o["nonce"]
        )


def test_encrypt_round_trip_with_chinese() -> None:
    crypto = official_crypto()
    encrypted, signature, ts, nonce = crypto.encrypt("<xml><Content><![CDATA[你好 XK-8800]]></Content></xml>")
    assert "你好 XK-8800" in crypto.verify_and_decrypt(encrypted, signature, ts, nonce)


def test_plain_signature_and_empty_signature() -> None:
    sig = sha1_signature("tok", "1409735669", "123")
    check_signature(("tok", "1409735669", "123"), sig)
    check_signature(("tok", "1409735669", "123"), sig.upper())  # hex case is not meaningful
    with pytest.raises(BadSignature):
        check_signature(("tok", "1409735669", "123"), "")
    with pytest.raises(BadSignature):
        check_signature(("other", "1409735669", "123"), sig)


def test_timestamp_window() -> None:
    check_timestamp("1000", 300, now=1200)
    with pytest.raises(StaleTimestamp):
        check_timestamp("1000", 300, now=1400)
    with pytest.raises(StaleTimestamp):
        check_timestamp("abc", 300, now=1000)
    check_timestamp("1000", 0, now=999_999)  # 0 turns the check off


@pytest.mark.parametrize("key", ["short", "a" * 44, "!" * 43])
def test_bad_encoding_aes_key_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError):
        MessageCrypto("t", key, "wx1")
