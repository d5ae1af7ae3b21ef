"""An asyncio client for the DingTalk open API (the parts Kefu needs).

Shares the gateway's ``aiohttp.ClientSession``; the app access token lives in Redis
through :class:`bot.tokens.TokenCache` so every process uses the same one; errors are
mapped to the channel layer's typed exceptions with one refresh-and-retry when the
token is rejected.

The new API (``api.dingtalk.com``) answers errors with an HTTP status and a JSON body
``{"code": ..., "message": ...}``; the session webhook (``oapi.dingtalk.com``) answers
200 with ``{"errcode": ..., "errmsg": ...}``. Both are handled here.

Docs: https://open.dingtalk.com/document/orgapp/obtain-the-access_token-of-an-internal-app
      https://open.dingtalk.com/document/orgapp/chatbots-send-one-on-one-chat-messages-in-batches
      https://open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message
      https://open.dingtalk.com/document/orgapp/download-the-file-content-of-the-robot-receiving-message
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.tokens import TokenCache
from channels.errors import (
    PermanentSendError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    TokenInvalid,
)

log = logging.getLogger(__name__)

TOKEN_CODES = frozenset({"InvalidAuthentication", "invalidAuthentication", "Unauthorized"})
# Session webhook errcodes: 130101 "send too fast", 130102 "send too much today".
WEBHOOK_RATE_ERRCODES = frozenset({130101, 130102})
TOKEN_HEADER = "x-acs-dingtalk-access-token"


def raise_for_api_error(status: int, data: Mapping[str, Any], path: str) -> None:
    """Map a non-2xx answer of the new API to a typed exception."""
    code = str(data.get("code", ""))
    message = f"{path}: HTTP {status} {code}: {data.get('message', '')}".rstrip(": ")
    if status == 401 or code in TOKEN_CODES:
        raise TokenInvalid(message)
    if status == 429 or "QpsLimit" in code or "Throttling" in code:
        raise RateLimited(message)
    if status >= 500:
        raise PlatformUnavailable(message)
    raise PermanentSendError(message)


def raise_for_errcode(data: Mapping[str, Any], path: str) -> None:
    """Map an old-style ``errcode`` answer (session webhook) to a typed exception."""
    errcode = data.get("errcode", 0)
    if not errcode:
        return
    message = f"{path}: errcode {errcode}: {data.get('errmsg', '')}"
    code = int(errcode) if isinstance(errcode, (int, str)) and str(errcode).lstrip("-").isdigit() else None
    if code in WEBHOOK_RATE_ERRCODES:
        raise RateLimited(message, errcode=code)
    if code == -1:
        raise PlatformUnavailable(message, errcode=code)
    raise PermanentSendError(message, errcode=code)


class DingTalkClient:
    """One DingTalk app (AppKey/AppSecret) and its robot."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenCache,
        *,
        app_key: str,
        app_secret: str,
        robot_code: str,
        base_url: str = "https://api.dingtalk.com",
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self.app_key = app_key
        self._app_secret = app_secret
        self.robot_code = robot_code
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    # -- tokens ---------------------------------------------------------------------
    async def access_token(self, *, stale: str | None = None) -> str:
        return await self._tokens.get(f"dingtalk:{self.app_key}", self._fetch_token, stale=stale)

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        # DingTalk hands out the same token until it expires (7200 s), so there is no
        # "force" knob: a rejected token is simply fetched again.
        status, data = await self._send("POST", self.base_url + "/v1.0/oauth2/accessToken", json={"appKey": self.app_key, "appSecret": self._app_secret})
        if status >= 300:
            raise_for_api_error(status, data, "oauth2/accessToken")
        try:
            return str(data["accessToken"]), int(data["expireIn"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PlatformUnavailable(f"accessToken answer without a token: {data!r}") from exc

    # -- transport ------------------------------------------------------------------
    async def _send(
        self, method: str, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        path = urlsplit(url).path
        try:
            async with self._session.request(method, url, json=json, headers=headers, timeout=self._timeout) as resp:
                status = resp.status
                text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PlatformUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc
        if status >= 500:
            raise PlatformUnavailable(f"{path}: HTTP {status}")
        try:
            payload = _json_object(text)
        except ValueError as exc:
            if status >= 300:
                raise PermanentSendError(f"{path}: HTTP {status}") from exc
            raise PlatformUnavailable(f"{path}: answer is not JSON") from exc
        return status, payload

    async def call(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        """Call a new-style API with the app token; refresh it once if it was rejected."""
        token = await self.access_token()
        for attempt in (1, 2):
            status, data = await self._send(method, self.base_url + path, json=json, headers={TOKEN_HEADER: token})
            if status < 300:
                return data
            try:
                raise_for_api_error(status, data, path)
            except TokenInvalid:
                if attempt == 2:
                    raise
                log.info("dingtalk %s: token rejected, refreshing once", self.app_key)
                token = await self.access_token(stale=token)
        raise AssertionError("unreachable")

    # -- robot messages ---------------------------------------------------------------
    async def send_by_webhook(self, webhook: str, payload: Mapping[str, Any]) -> None:
        """POST to a message's ``sessionWebhook`` (no token needed while it is valid)."""
        status, data = await self._send("POST", webhook, json=dict(payload))
        if status >= 300:
            raise_for_api_error(status, data, "sessionWebhook")
        raise_for_errcode(data, "sessionWebhook")

    async def batch_send(self, user_ids: Sequence[str], msg_key: str, msg_param: Mapping[str, Any]) -> None:
        """POST /v1.0/robot/oToMessages/batchSend: 1:1 messages to staff ids."""
        await self.call(
            "POST",
            "/v1.0/robot/oToMessages/batchSend",
            json={
                "robotCode": self.robot_code,
                "userIds": list(user_ids),
                "msgKey": msg_key,
                "msgParam": _dumps(msg_param),
            },
        )

    async def group_send(self, open_conversation_id: str, msg_key: str, msg_param: Mapping[str, Any]) -> None:
        """POST /v1.0/robot/groupMessages/send: a message to a group the robot is in."""
        await self.call(
            "POST",
            "/v1.0/robot/groupMessages/send",
            json={
                "robotCode": self.robot_code,
                "openConversationId": open_conversation_id,
                "msgKey": msg_key,
                "msgParam": _dumps(msg_param),
            },
        )

    async def download_url(self, download_code: str) -> str:
        """POST /v1.0/robot/messageFiles/download: a short-lived URL for a file."""
        data = await self.call(
            "POST", "/v1.0/robot/messageFiles/download", json={"downloadCode": download_code, "robotCode": self.robot_code}
        )
        url = data.get("downloadUrl")
        if not isinstance(url, str) or not url:
            raise PlatformError(f"messageFiles/download answered without downloadUrl: {data!r}")
        return url

    async def download(self, download_code: str) -> bytes:
        """The bytes of a file a customer sent (voice note, picture, document)."""
        url = await self.download_url(download_code)
        try:
            async with self._session.get(url, timeout=self._timeout) as resp:
                if resp.status >= 500:
                    raise PlatformUnavailable(f"file download: HTTP {resp.status}")
                if resp.status >= 400:
                    raise PermanentSendError(f"file download: HTTP {resp.status}")
                return await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PlatformUnavailable(f"file download: {type(exc).__name__}") from exc


def _json_object(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _dumps(value: Mapping[str, Any]) -> str:
    # msgParam is a JSON document inside the JSON body, as DingTalk's API defines it.
    return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"))
