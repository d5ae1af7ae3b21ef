"""Build the configured connectors from kefu.yml's ``connectors:`` section.

In simulator mode a connector without a section points at its fake under
``/_sim/<name>`` (the DingTalk to-do at the DingTalk fake), so the embedded demo runs the
whole loop without outside accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import aiohttp

from bot.errors import ConfigError
from skills.connectors.base import Connector, ConnectorSettings
from skills.connectors.coupons import CouponConnector
from skills.connectors.erp import ErpConnector
from skills.connectors.fakes import FakeAmazon, FakeCoupons, FakeErp, FakeServiceNow, FakeShopee, FakeSystem, FakeTemu
from skills.connectors.marketplace import AmazonConnector, ShopeeConnector, TemuConnector
from skills.connectors.servicenow import ServiceNowConnector
from skills.connectors.todo import DingTalkTodoConnector, TodoApiFactory

CONNECTOR_CLASSES: Mapping[str, type[Connector]] = MappingProxyType({
    "erp": ErpConnector,
    "servicenow": ServiceNowConnector,
    "dingtalk_todo": DingTalkTodoConnector,
    "coupons": CouponConnector,
    "amazon": AmazonConnector,
    "shopee": ShopeeConnector,
    "temu": TemuConnector,
})

# Fakes of those systems on loopback, for tests and the embedded demo. The DingTalk
# to-do fake is the DingTalk channel's own (its class's ``fake_api``, at /_sim/dingtalk).
SIMULATED_CONNECTORS: Mapping[str, type[FakeSystem]] = MappingProxyType({
    "erp": FakeErp,
    "servicenow": FakeServiceNow,
    "coupons": FakeCoupons,
    "amazon": FakeAmazon,
    "shopee": FakeShopee,
    "temu": FakeTemu,
})

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
    section: Mapping[str, Any],
    http: aiohttp.ClientSession,
    *,
    gateway_url: str,
    simulator: bool,
    todo_api: TodoApiFactory | None = None,
) -> Connectors:
    """The configured connectors.

    Args:
        todo_api: builds the to-do platform's client from the to-do connector's settings;
            the composition root supplies it (the DingTalk client), so skills never
            import a channel.
    """
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
        cls = CONNECTOR_CLASSES.get(str(raw.get("type") or name))
        if cls is None:
            raise ConfigError(f"connectors.{name}: unknown connector (known: {', '.join(sorted(CONNECTOR_CLASSES))})")
        settings = ConnectorSettings.from_section(name, raw, gateway_url)
        if issubclass(cls, DingTalkTodoConnector):
            items[name] = cls(http, settings, api=todo_api(settings) if todo_api is not None else None)
        else:
            items[name] = cls(http, settings)
    return Connectors(items)
