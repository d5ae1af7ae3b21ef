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

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.tokens import TokenCache
from channels.errors import (
    OutsideServiceWindow,
    PermanentSendError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    TokenInvalid,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"

# 40014 invalid token, 42001 expired, 40001 "invalid credential" (WeCom also answers
# it for a token rotated elsewhere).
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
BUSY_ERRORS = frozenset({-1})
# 45009 API call quota, 45033 too many concurrent calls, 45035 send quota.
RATE_ERRORS = frozenset({45009, 45033, 45035})
# WeCom KF: 95001 the customer has not written within 48 h or the 5-message quota
# since their last message is used up. Waiting for the customer is the only fix.
WINDOW_ERRORS = frozenset({95001})


def raise_for_errcode(data: Mapping[str, Any]) -> None:
    """Raise the typed error an ``errcode`` stands for; 0 or missing is success."""
    errcode = data.get("errcode", 0)
    if not errcode:
        return
    message = f"errcode {errcode}: {data.get('errmsg', '')}"
    if errcode in TOKEN_ERRORS:
        raise TokenInvalid(message, errcode=errcode)
    if errcode in BUSY_ERRORS:
        raise PlatformUnavailable(message, errcode=errcode)
    if errcode in RATE_ERRORS:
        raise RateLimited(message, errcode=errcode)
    if errcode in WINDOW_ERRORS:
        raise OutsideServiceWindow(message, errcode=errcode)
    raise PermanentSendError(message, errcode=errcode)


class WeComClient:
    """Token handling, transport and the app-message API of one WeCom secret."""

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
        self._session = session
        self._tokens = tokens
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # The secret picks the token, but must not appear in Redis keys or logs.
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        self.token_name = f"wecom:{corp_id}:{digest}"

    # -- tokens ---------------------------------------------------------------------
    async def access_token(self, *, stale: str | None = None) -> str:
        return await self._tokens.get(self.token_name, self._fetch_token, stale=stale)

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        # WeCom's gettoken has no force flag: a fresh call returns the current token
        # (or a new one once it expired), so `force` needs no parameter here.
        data = await self._request("GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret})
        errcode = data.get("errcode", 0)
        if errcode in BUSY_ERRORS:
            raise PlatformUnavailable(f"gettoken: errcode {errcode}", errcode=errcode)
        if errcode:
            # 40001/40013/40091 here mean a wrong secret or CorpID in kefu.yml: retrying
            # cannot help, so this must not look like a retryable token error.
            raise PermanentSendError(f"gettoken: errcode {errcode}: {data.get('errmsg', '')}", errcode=errcode)
        try:
            return str(data["access_token"]), int(data["expires_in"])
        except (KeyError, ValueError) as exc:
            raise PlatformUnavailable(f"gettoken answered without a token: {data!r}") from exc

    # -- transport ------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, self.base_url + path, params=params, json=json_body, data=data, timeout=self._timeout
            ) as resp:
                if resp.status >= 500:
                    raise PlatformUnavailable(f"{path}: HTTP {resp.status}")
                if resp.status >= 400:
                    raise PermanentSendError(f"{path}: HTTP {resp.status}")
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PlatformUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise PlatformUnavailable(f"{path}: answer is not JSON") from exc
        if not isinstance(payload, dict):
            raise PlatformUnavailable(f"{path}: unexpected answer {payload!r}")
        return payload

    async def call(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Call an API that takes ``access_token``; refresh it once if it was rejected."""
        token = await self.access_token()
        for attempt in (1, 2):
            query = {**(params or {}), "access_token": token}
            result = await self._request(method, path, params=query, json_body=json_body, data=data)
            try:
                raise_for_errcode(result)
                return result
            except TokenInvalid:
                if attempt == 2:
                    raise
                log.info("wecom %s: token rejected, refreshing once", self.corp_id)
                token = await self.access_token(stale=token)
        raise AssertionError("unreachable")

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

    async def upload_media(self, media_type: str, filename: str, content: bytes) -> str:
        """Upload temporary media (image/voice/file); returns the media_id (valid 3 days)."""
        form = aiohttp.FormData()
        form.add_field("media", content, filename=filename)
        result = await self.call("POST", "/cgi-bin/media/upload", params={"type": media_type}, data=form)
        media_id = result.get("media_id")
        if not isinstance(media_id, str):
            raise PlatformError(f"media upload answered without media_id: {result!r}")
        return media_id

    async def download_media(self, media_id: str) -> bytes:
        """GET /cgi-bin/media/get: the bytes of a temporary media file (voice notes)."""
        token = await self.access_token()
        for attempt in (1, 2):
            try:
                async with self._session.get(
                    self.base_url + "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                    timeout=self._timeout,
                ) as resp:
                    if resp.status >= 500:
                        raise PlatformUnavailable(f"media/get: HTTP {resp.status}")
                    if resp.status >= 400:
                        raise PermanentSendError(f"media/get: HTTP {resp.status}")
                    body = await resp.read()
                    # Errors come back as a JSON body; media as anything else.
                    is_json = resp.content_type in ("application/json", "text/plain") and body[:1] == b"{"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise PlatformUnavailable(f"media/get: {type(exc).__name__}") from exc
            if not is_json:
                return body
            try:
                error = json.loads(body)
            except ValueError as exc:
                raise PlatformUnavailable("media/get: bad JSON error body") from exc
            try:
                raise_for_errcode(error)
            except TokenInvalid:
                if attempt == 2:
                    raise
                token = await self.access_token(stale=token)
                continue
            raise PermanentSendError(f"media/get: unexpected JSON {body[:200]!r}")
        raise AssertionError("unreachable")
