"""An asyncio client for the WeChat service-account API (the parts Kefu needs).

wechatpy's own client is synchronous ``requests``; this one shares the gateway's
``aiohttp.ClientSession``. Tokens, transport, error mapping and media come from
:class:`channels.tencent_api.TencentApiClient`; this module adds WeChat's token
endpoint and the customer-service message API.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
      https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html
      https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.tokens import TokenCache
from channels.errors import PlatformUnavailable
from channels.tencent_api import ErrorCodes, TencentApiClient

ERRORS = ErrorCodes(
    token=frozenset({40001, 40014, 42001}),
    window=frozenset({45015, 45047}),  # 48 h window closed / too many replies since
    rate=frozenset({45009, 45011, 45033}),
)


class WeChatClient(TencentApiClient):
    errors = ERRORS

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
        super().__init__(session, tokens, token_name=f"wechat:{app_id}", base_url=base_url, timeout_s=timeout_s)
        self.app_id = app_id
        self._app_secret = app_secret

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        # stable_token hands every caller the same token until it expires, so a second
        # gateway (or a staging copy) sharing the AppID does not invalidate ours.
        data = await self._request(
            "POST",
            "/cgi-bin/stable_token",
            json_body={
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self._app_secret,
                "force_refresh": force,
            },
        )
        self.errors.raise_for(data)
        try:
            return str(data["access_token"]), int(data["expires_in"])
        except (KeyError, ValueError) as exc:
            raise PlatformUnavailable(f"stable_token answer without a token: {data!r}") from exc

    async def send_custom(self, payload: Mapping[str, Any]) -> None:
        """POST /cgi-bin/message/custom/send (customer-service message)."""
        await self.call("POST", "/cgi-bin/message/custom/send", json_body=payload)
