"""API keys with scopes for the gateway's JSON APIs (CRM, console, integrations).

Keys are configured in ``kefu.yml``; only SHA-256 digests are kept in memory and they
are compared in constant time, without an early exit::

    api:
      keys:
        - {key: "...", scopes: [conversations:read, conversations:write]}
        - {key_sha256: "<hex>", scopes: [prefs:read]}

A request presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key``; the
``/api`` middleware in :mod:`bot.api` checks it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError

log = logging.getLogger(__name__)

SCOPES = (
    "conversations:read",  # list waiting conversations, read a conversation
    "conversations:write",  # claim, reply as agent, hand back
    "prefs:read",
    "prefs:write",
    "notify",
    "data:export",
    "data:erase",
    "marketing",
    "repair:read",  # repair tickets, those flagged for an agent
    "repair:write",  # engineer status changes
    "renewal:read",
    "renewal:write",  # renewal rules
    "reviews:read",  # reviews, carrier performance
    "reviews:write",  # review import and webhook-less pushes
)


@dataclass
class ApiKeys:
    """Configured API keys as (sha256 digest, scopes)."""

    keys: list[tuple[bytes, frozenset[str]]] = field(default_factory=list)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ApiKeys:
        out = cls()
        for i, item in enumerate(section.get("keys") or ()):
            if not isinstance(item, Mapping):
                raise ConfigError(f"api.keys[{i}]: expected a mapping")
            scopes = frozenset(str(s) for s in item.get("scopes") or ())
            unknown = scopes - set(SCOPES)
            if unknown:
                raise ConfigError(f"api.keys[{i}]: unknown scopes {sorted(unknown)} (known: {', '.join(SCOPES)})")
            if item.get("key"):
                digest = hashlib.sha256(str(item["key"]).encode()).digest()
            elif item.get("key_sha256"):
                digest = bytes.fromhex(str(item["key_sha256"]))
            else:
                raise ConfigError(f"api.keys[{i}]: needs key or key_sha256")
            out.keys.append((digest, scopes))
        return out

    def scopes_of(self, presented: str) -> frozenset[str] | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found: frozenset[str] | None = None
        for known, scopes in self.keys:  # no early exit: timing says nothing about which key
            if hmac.compare_digest(digest, known):
                found = scopes
        return found
