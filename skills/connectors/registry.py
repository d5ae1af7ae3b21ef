"""Build the configured connectors from kefu.yml's ``connectors:`` section.

In simulator mode a connector without a section points at its fake under
``/_sim/<name>`` (the DingTalk to-do at the DingTalk fake), so the embedded demo runs the
whole loop without outside accounts.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp

from bot.errors import ConfigError
from bot.tokens import TokenCache
from skills.connectors import CONNECTOR_CLASSES, SIMULATED_CONNECTORS
from skills.connectors.base import Connector, ConnectorSettings

C = TypeVar("C", bound=Connector)

_SIM_PATHS = {**{name: f"/_sim/{name}" for name in SIMULATED_CONNECTORS}, "dingtalk_todo": "/_sim/dingtalk"}


class Connectors:
    """The connectors this gateway has, by name."""

    def __init__(self, items: Mapping[str, Connector] | None = None) -> None:
        self.items: dict[str, Connector] = dict(items or {})

    def get(self, name: str, kind: type[C]) -> C | None:
        found = self.items.get(name)
        return found if isinstance(found, kind) else None


def build_connectors(
    section: Mapping[str, Any], http: aiohttp.ClientSession, *, gateway_url: str, simulator: bool, tokens: TokenCache | None = None
) -> Connectors:
    sections: dict[str, Mapping[str, Any]] = {}
    if simulator:
        sections.update({name: {"base_url": path} for name, path in _SIM_PATHS.items()})
    for name, value in (section or {}).items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"connectors.{name}: expected a mapping")
        sections[str(name)] = value
    items: dict[str, Connector] = {}
    for name, raw in sections.items():
        if raw.get("enabled", True) is False:
            continue
        target = CONNECTOR_CLASSES.get(str(raw.get("type") or name))
        if target is None:
            raise ConfigError(f"connectors.{name}: unknown connector (known: {', '.join(sorted(CONNECTOR_CLASSES))})")
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        items[name] = cls(http, ConnectorSettings.from_section(name, raw, gateway_url), tokens=tokens)
    return Connectors(items)
