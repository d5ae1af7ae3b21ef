"""Connectors: small typed HTTP clients for the outside systems the skills close loops with.

Each connector talks to one system (ERP stock, ServiceNow, DingTalk to-do, coupons, the
marketplaces) over the gateway's shared ``aiohttp.ClientSession``; its base URL and
credentials come from its own entry under ``connectors:`` in kefu.yml. Registering one =
one module + one line in :data:`skills.connectors.registry.CONNECTOR_CLASSES` (and its
fake in ``SIMULATED_CONNECTORS`` there, mounted under ``/_sim/<name>`` when
``simulator: true``).
"""
