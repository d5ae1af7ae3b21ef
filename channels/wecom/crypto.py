"""WeCom callback verification and decryption.

WeCom uses WeChat's WXBizMsgCrypt scheme unchanged except that the id sealed inside
every ciphertext is the CorpID, so this wraps :class:`channels.wechat.crypto.MessageCrypto`
rather than repeating it. Unlike the WeChat service account there is no plaintext
mode: every callback, including the GET URL check, is signed with ``msg_signature``
over (token, timestamp, nonce, ciphertext) and encrypted.

Docs: https://developer.work.weixin.qq.com/document/path/90968 (加解密方案说明)
      https://developer.work.weixin.qq.com/document/path/90930 (接收消息与事件)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.errors import MalformedPayload
from channels.wechat.crypto import MessageCrypto, check_signature, check_timestamp
from channels.xml import parse_flat_xml


class CallbackCrypto:
    """Verify and open the callbacks of one WeCom receiver (an app or WeCom KF)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str, *, timestamp_window_s: int = 300) -> None:
        self.corp_id = corp_id
        self._crypto = MessageCrypto(token, encoding_aes_key, corp_id)
        self._window = timestamp_window_s

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> CallbackCrypto:
        """From a wecom / wecom_kf account section (token, encoding_aes_key, corp_id)."""
        return cls(
            str(section["token"]),
            str(section["encoding_aes_key"]),
            str(section["corp_id"]),
            timestamp_window_s=int(section.get("timestamp_window_s", 300)),
        )

    @property
    def message_crypto(self) -> MessageCrypto:
        return self._crypto

    def verify_url(self, query: Mapping[str, str]) -> str:
        """The plaintext of ``echostr``, to be answered verbatim (WeCom allows 1 s)."""
        echostr = query.get("echostr", "")
        if not echostr:
            raise MalformedPayload("echostr missing")
        self._verify(query, echostr)
        return self._crypto.decrypt(echostr)

    def open(self, query: Mapping[str, str], body: bytes) -> tuple[dict[str, str], str]:
        """Verify and decrypt a POSTed callback: (inner fields, inner XML as received)."""
        outer = parse_flat_xml(body)
        cipher = outer.get("Encrypt", "")
        if not cipher:
            raise MalformedPayload("Encrypt element missing")
        # The signature covers the ciphertext, so it is checked before any AES work and
        # before the decrypted XML reaches a parser.
        self._verify(query, cipher)
        raw = self._crypto.decrypt(cipher)
        return parse_flat_xml(raw), raw

    def _verify(self, query: Mapping[str, str], cipher: str) -> None:
        timestamp = query.get("timestamp", "")
        check_signature((self._crypto.token, timestamp, query.get("nonce", ""), cipher), query.get("msg_signature", ""))
        # After the signature: a forged request is reported as forged, not as stale.
        check_timestamp(timestamp, self._window)
