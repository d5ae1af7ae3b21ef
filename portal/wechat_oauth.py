"""WeChat web authorisation (网页授权, ``snsapi_base``): the openid of whoever opened a
portal page in WeChat's in-app browser, without a click.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
The browser is sent to ``open.weixin.qq.com/connect/oauth2/authorize``; WeChat sends it
back with ``code``, which the server exchanges at ``/sns/oauth2/access_token`` for the
openid. The web access token that comes with it is not kept: the portal needs only who.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from portal.errors import LinkRefused

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WeChatOAuth:
    """One service account's web authorisation."""

    http: aiohttp.ClientSession
    account: str
    app_id: str
    app_secret: str
    api_base_url: str = "https://api.weixin.qq.com"
    authorize_base_url: str = "https://open.weixin.qq.com"
    timeout_s: float = 5.0

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode({
            "appid": self.app_id, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": "snsapi_base", "state": state,
        })
        return f"{self.authorize_base_url.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"

    async def openid(self, code: str) -> str:
        """The openid behind ``code``; LinkRefused when WeChat refuses the code."""
        query = {"appid": self.app_id, "secret": self.app_secret, "code": code, "grant_type": "authorization_code"}
        url = f"{self.api_base_url.rstrip('/')}/sns/oauth2/access_token"
        try:
            async with self.http.get(url, params=query, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("wechat oauth (%s): code exchange failed: %s", self.account, type(exc).__name__)
            raise LinkRefused("WeChat could not confirm who you are; ask for a link in the chat") from None
        if not isinstance(body, dict) or body.get("errcode") or not body.get("openid"):
            code_no = body.get("errcode") if isinstance(body, dict) else None
            log.info("wechat oauth (%s): code refused (errcode %s)", self.account, code_no)
            raise LinkRefused("WeChat did not accept this sign-in; ask for a link in the chat")
        return str(body["openid"])
