"""The connector base: settings from one kefu.yml section, one request method, one error type.

``connectors.<name>`` in kefu.yml::

    connectors:
      servicenow: {base_url: "https://acme.service-now.com", username: kefu, password: "..."}
      erp: {base_url: "https://erp.internal", token: "..."}

``token`` is sent as ``Authorization: Bearer``; ``username``/``password`` as basic auth.
A relative ``base_url`` (``/_sim/erp``) is taken relative to the gateway's own URL, which
is how the embedded demo points connectors at the fakes it mounts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from bot.errors import ConfigError

log = logging.getLogger(__name__)


class ConnectorError(Exception):
    """An outside system failed; ``code`` is the HTTP status or a short reason."""

    def __init__(self, connector: str, code: str, message: str) -> None:
        super().__init__(f"{connector}: {code}: {message}")
        self.connector = connector
        self.code = code
        self.message = message


class ConnectorUnavailable(ConnectorError):
    """Unreachable, timed out or 5xx: worth retrying later."""


class ConnectorRejected(ConnectorError):
    """4xx: the request itself was refused; retrying the same request will not help."""


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    base_url: str
    token: str = ""
    username: str = ""
    password: str = ""
    timeout_s: float = 5.0
    options: Mapping[str, Any] | None = None  # connector-specific keys (union_id, region, ...)

    @classmethod
    def from_section(cls, name: str, section: Mapping[str, Any], gateway_url: str) -> ConnectorSettings:
        base = str(section.get("base_url") or "")
        if not base:
            raise ConfigError(f"connectors.{name}: base_url is required")
        if base.startswith("/"):
            base = gateway_url.rstrip("/") + base
        known = {"base_url", "token", "username", "password", "timeout_s"}
        try:
            timeout = float(section.get("timeout_s", 5.0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"connectors.{name}.timeout_s: {exc}") from exc
        return cls(
            base_url=base.rstrip("/"),
            token=str(section.get("token") or ""),
            username=str(section.get("username") or ""),
            password=str(section.get("password") or ""),
            timeout_s=timeout,
            options={k: v for k, v in section.items() if k not in known},
        )

    def option(self, key: str, default: str = "") -> str:
        return str((self.options or {}).get(key, default))


class Connector:
    """One outside system over the shared session."""

    name: ClassVar[str]

    def __init__(self, http: aiohttp.ClientSession, settings: ConnectorSettings, **_: Any) -> None:
        self.http = http
        self.settings = settings
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_s)

    def _headers(self) -> dict[str, str]:
        if self.settings.token:
            return {"Authorization": f"Bearer {self.settings.token}"}
        if self.settings.username:
            return {"Authorization": aiohttp.encode_basic_auth(self.settings.username, self.settings.password)}
        return {}

    async def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """Call ``path`` and return the decoded JSON body.

        Raises:
            ConnectorUnavailable: connection failure, timeout or 5xx.
            ConnectorRejected: 4xx.
        """
        url = self.settings.base_url + path
        try:
            async with self.http.request(
                method, url, json=json, params=params, headers=self._headers(), timeout=self._timeout
            ) as resp:
                text = await resp.text()
                if resp.status >= 500:
                    raise ConnectorUnavailable(self.name, str(resp.status), text[:200])
                if resp.status >= 400:
                    raise ConnectorRejected(self.name, str(resp.status), text[:200])
                try:
                    return await resp.json(content_type=None) if text else {}
                except ValueError as exc:
                    raise ConnectorUnavailable(self.name, "bad_json", text[:200]) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ConnectorUnavailable(self.name, type(exc).__name__, str(exc) or "unreachable") from exc
