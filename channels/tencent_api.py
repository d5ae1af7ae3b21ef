"""What the WeChat service-account and WeCom server APIs share, written once.

Both are Tencent APIs with the same conventions: an ``access_token`` query parameter,
JSON answers carrying ``errcode``/``errmsg``, temporary media under
``/cgi-bin/media/upload`` and ``/cgi-bin/media/get`` (errors as JSON, media as bytes).
This base keeps the token in Redis through :class:`bot.tokens.TokenCache` (one per
account, shared by every Kefu process), maps error codes to the typed errors of
:mod:`channels.errors`, and refreshes a rejected token once before retrying, as
wechatpy's ``client/base.py`` ``_handle_result`` does. Subclasses say how a token is
fetched and which codes mean what on their platform.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ErrorCodes:
    """Which ``errcode`` values mean what on one platform; the rest are permanent."""

    token: frozenset[int]
    window: frozenset[int]
    rate: frozenset[int]
    busy: frozenset[int] = frozenset({-1})

    def raise_for(self, data: Mapping[str, Any]) -> None:
        """Raise the typed error an ``errcode`` stands for; 0 or missing is success."""
        errcode = data.get("errcode", 0)
        if not errcode:
            return
        message = f"errcode {errcode}: {data.get('errmsg', '')}"
        if errcode in self.token:
            raise TokenInvalid(message, errcode=errcode)
        if errcode in self.window:
            raise OutsideServiceWindow(message, errcode=errcode)
        if errcode in self.rate:
            raise RateLimited(message, errcode=errcode)
        if errcode in self.busy:
            raise PlatformUnavailable(message, errcode=errcode)
        raise PermanentSendError(message, errcode=errcode)


class TencentApiClient(abc.ABC):
    errors: ErrorCodes

    def __init__(
        self, session: aiohttp.ClientSession, tokens: TokenCache, *, token_name: str, base_url: str, timeout_s: float = 10.0
    ) -> None:
        self._session = session
        self._tokens = tokens
        self.token_name = token_name
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def access_token(self, *, stale: str | None = None) -> str:
        return await self._tokens.get(self.token_name, self._fetch_token, stale=stale)

    @abc.abstractmethod
    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        """Ask the platform for a token; returns (token, lifetime in seconds)."""

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
                self.errors.raise_for(result)
                return result
            except TokenInvalid:
                if attempt == 2:
                    raise
                log.info("%s: token rejected, refreshing once", self.token_name)
                token = await self.access_token(stale=token)
        raise AssertionError("unreachable")

    async def upload_media(self, media_type: str, filename: str, content: bytes) -> str:
        """Upload temporary media (image, voice, file); returns the media_id (3 days)."""
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
                self.errors.raise_for(error)
            except TokenInvalid:
                if attempt == 2:
                    raise
                token = await self.access_token(stale=token)
                continue
            raise PermanentSendError(f"media/get: unexpected JSON {body[:200]!r}")
        raise AssertionError("unreachable")
