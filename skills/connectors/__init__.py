"""Connectors: small typed HTTP clients for the outside systems the skills close loops with.

Each connector talks to one system (ERP stock, ServiceNow, DingTalk to-do, coupons, the
marketplaces) over the gateway's shared ``aiohttp.ClientSession``; its base URL and
credentials come from its own entry under ``connectors:`` in kefu.yml. Registering one =
one module + one line in :data:`CONNECTOR_CLASSES` (and its fake in
:data:`SIMULATED_CONNECTORS`, mounted under ``/_sim/<name>`` when ``simulator: true``).
"""

from __future__ import annotations

# name -> "module:Class" of the connector; the composition root builds the configured ones.
CONNECTOR_CLASSES: dict[str, str] = {
    "erp": "skills.connectors.erp:ErpConnector",
    "servicenow": "skills.connectors.servicenow:ServiceNowConnector",
    "dingtalk_todo": "skills.connectors.todo:DingTalkTodoConnector",
    "coupons": "skills.connectors.coupons:CouponConnector",
    "amazon": "skills.connectors.marketplace:AmazonConnector",
    "shopee": "skills.connectors.marketplace:ShopeeConnector",
    "temu": "skills.connectors.marketplace:TemuConnector",
}

# Fakes of those systems on loopback, for tests and the embedded demo: "module:Class",
# each offering app() -> aiohttp.web.Application. The DingTalk to-do fake is the DingTalk
# channel's own (mounted as /_sim/dingtalk by channels.SIMULATED_APIS).
SIMULATED_CONNECTORS: dict[str, str] = {
    "erp": "skills.connectors.fakes:FakeErp",
    "servicenow": "skills.connectors.fakes:FakeServiceNow",
    "coupons": "skills.connectors.fakes:FakeCoupons",
    "amazon": "skills.connectors.fakes:FakeAmazon",
    "shopee": "skills.connectors.fakes:FakeShopee",
    "temu": "skills.connectors.fakes:FakeTemu",
}
