"""An asyncio client for the WeCom server API (the parts Kefu needs).

One client per (CorpID, secret): WeCom issues an access token per secret (each app and
WeCom KF have their own), so the token is cached in Redis under both, shared by every
Kefu process through :class:`bot.tokens.TokenCache`. Error codes map to the typed
errors of :mod:`channels.errors`; a rejected token is refreshed once and the call
retried, as wechatpy's ``client/base.py`` ``_handle_result`` does.

Docs: https://developer.work.weixin.qq.com/document/path/91039 (获取access_token)
      https://developer.work.weixin.qq.com/document/path/90236 (发送应用消息)
      https://developer.work.weixin.qq.com/document/path/90254 (获取临时素材)
      https://developer.work.weixin.qq.com/document/path/90313 (全局错误码)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Self

import aiohttp

from bot.tokens import TokenCache
from channels.base import ChannelContext, resolve_base_url
from channels.errors import PermanentSendError, PlatformUnavailable
from channels.tencent_api import ErrorCodes, TencentApiClient

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"

ERRORS = ErrorCodes(
    # 40014 invalid token, 42001 expired, 40001 "invalid credential" (WeCom also answers
    # it for a token rotated elsewhere).
    token=frozenset({40001, 40014, 42001}),
    # WeCom KF: 95001 the customer has not written within 48 h or the 5-message quota
    # since their last message is used up. Waiting for the customer is the only fix.
    window=frozenset({95001}),
    # 45009 API call quota, 45033 too many concurrent calls, 45035 send quota.
    rate=frozenset({45009, 45033, 45035}),
)


class WeComClient(TencentApiClient):
    """Token handling, transport and the app-message API of one WeCom secret."""

    errors = ERRORS

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenCache,
        *,
        corp_id: str,
        secret: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
    ) -> None:
        # The secret picks the token, but must not appear in Redis keys or logs.
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        super().__init__(session, tokens, token_name=f"wecom:{corp_id}:{digest}", base_url=base_url, timeout_s=timeout_s)
        self.corp_id = corp_id
        self._secret = secret

    @classmethod
    def from_settings(cls, section: Mapping[str, Any], ctx: ChannelContext) -> Self:
        """From a wecom / wecom_kf account section; subclasses get their own kind."""
        return cls(
            ctx.http,
            ctx.tokens,
            corp_id=str(section["corp_id"]),
            secret=str(section["secret"]),
            base_url=resolve_base_url(section.get("api_base_url"), DEFAULT_BASE_URL, ctx),
            timeout_s=float(section.get("timeout_s", 10.0)),
        )

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        # WeCom's gettoken has no force flag: a fresh call returns the current token
        # (or a new one once it expired), so `force` needs no parameter here.
        data = await self._request("GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret})
        errcode = data.get("errcode", 0)
        if errcode in self.errors.busy:
            raise PlatformUnavailable(f"gettoken: errcode {errcode}", errcode=errcode)
        if errcode:
            # 40001/40013/40091 here mean a wrong secret or CorpID in kefu.yml: retrying
            # cannot help, so this must not look like a retryable token error.
            raise PermanentSendError(f"gettoken: errcode {errcode}: {data.get('errmsg', '')}", errcode=errcode)
        try:
            return str(data["access_token"]), int(data["expires_in"])
        except (KeyError, ValueError) as exc:
            raise PlatformUnavailable(f"gettoken answered without a token: {data!r}") from exc

    # -- app messages ---------------------------------------------------------------
    async def send_message(self, payload: Mapping[str, Any]) -> str:
        """POST /cgi-bin/message/send; returns WeCom's msgid.

        WeCom answers errcode 0 with the recipient listed in ``invaliduser`` when the
        user left the company or is outside the app's visible range: for a reply to one
        person that is a failed send, and retrying cannot fix it.
        """
        result = await self.call("POST", "/cgi-bin/message/send", json_body=payload)
        invalid = str(result.get("invaliduser", "") or "")
        if invalid and str(payload.get("touser", "")) in invalid.split("|"):
            raise PermanentSendError(f"message/send: recipient {invalid} is invalid or out of the app's range")
        return str(result.get("msgid", ""))
