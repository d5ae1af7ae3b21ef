"""An asyncio client for the WeChat service-account API (the parts Kefu needs).

wechatpy's own client is synchronous ``requests``; this one shares the gateway's
``aiohttp.ClientSession``, keeps its token in Redis for every process, and maps error
codes to typed exceptions with one refresh-and-retry on token errors, as wechatpy's
``client/base.py`` ``_handle_result`` does.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
      https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html
"""

from __future__ import annotations

import asyncio
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

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
WINDOW_ERRORS = frozenset({45015, 45047})  # 48 h window closed / too many replies since
RATE_ERRORS = frozenset({45009, 45011, 45033})
BUSY_ERRORS = frozenset({-1})


def raise_for_errcode(data: Mapping[str, Any]) -> None:
    errcode = data.get("errcode", 0)
    if not errcode:
        return
    errmsg = str(data.get("errmsg", ""))
    message = f"errcode {errcode}: {errmsg}"
    if errcode in TOKEN_ERRORS:
        raise TokenInvalid(message, errcode=errcode)
    if errcode in WINDOW_ERRORS:
        raise OutsideServiceWindow(message, errcode=errcode)
    if errcode in RATE_ERRORS:
        raise RateLimited(message, errcode=errcode)
    if errcode in BUSY_ERRORS:
        raise PlatformUnavailable(message, errcode=errcode)
    raise PermanentSendError(message, errcode=errcode)


class WeChatClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenCache,
        *,
        app_id: str,
        app_secret: str,
        base_url: str = "https://api.weixin.qq.com",
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self.app_id = app_id
        self._app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    # -- tokens ---------------------------------------------------------------------
    async def access_token(self, *, stale: str | None = None) -> str:
        return await self._tokens.get(f"wechat:{self.app_id}", self._fetch_token, stale=stale)

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        # stable_token hands every caller the same token until it expires, so a second
        # gateway (or a staging copy) sharing the AppID does not invalidate ours.
        data = await self._request(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self._app_secret,
                "force_refresh": force,
            },
        )
        raise_for_errcode(data)
        try:
            return str(data["access_token"]), int(data["expires_in"])
        except (KeyError, ValueError) as exc:
            raise PlatformUnavailable(f"stable_token answer without a token: {data!r}") from exc

    # -- transport ------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, self.base_url + path, params=params, json=json, data=data, timeout=self._timeout
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

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Call an API that takes ``access_token``; refresh it once if it was rejected."""
        token = await self.access_token()
        for attempt in (1, 2):
            query = {**(params or {}), "access_token": token}
            result = await self._request(method, path, params=query, json=json, data=data)
            try:
                raise_for_errcode(result)
                return result
            except TokenInvalid:
                if attempt == 2:
                    raise
                log.info("wechat %s: token rejected, refreshing once", self.app_id)
                token = await self.access_token(stale=token)
        raise AssertionError("unreachable")

    # -- API ------------------------------------------------------------------------
    async def send_custom(self, payload: Mapping[str, Any]) -> None:
        """POST /cgi-bin/message/custom/send (customer-service message)."""
        await self.call("POST", "/cgi-bin/message/custom/send", json=payload)

    async def upload_media(self, media_type: str, filename: str, content: bytes) -> str:
        """Upload temporary media (image/voice); returns the media_id."""
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
                    body = await resp.read()
                    # Errors come back as JSON; media comes back as anything else.
                    is_json = resp.content_type in ("application/json", "text/plain") and body[:1] == b"{"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise PlatformUnavailable(f"media/get: {type(exc).__name__}") from exc
            if not is_json:
                return body
            import json as _json

            try:
                raise_for_errcode(_json.loads(body))
            except TokenInvalid:
                if attempt == 2:
                    raise
                token = await self.access_token(stale=token)
                continue
            except ValueError as exc:
                raise PlatformUnavailable("media/get: bad JSON error body") from exc
            raise PermanentSendError(f"media/get: unexpected JSON {body[:200]!r}")
        raise AssertionError("unreachable")
