from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.runtime import RUNTIME, Runtime
from channels.email.channel import EmailChannel
from tests.email.servers import Dovecot, SmtpSink, dovecot_server, smtp_sink

USERS = {"support": "support-pw", "customer": "customer-pw"}
ADDRESS = "support@kefu.test"
CUSTOMER = "customer@kefu.test"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with dovecot_server(USERS) as server:
        yield server


@pytest.fixture
def sink(dovecot: Dovecot) -> Iterator[SmtpSink]:
    with smtp_sink(deliver_to=dovecot) as s:
        yield s


def email_account(dovecot: Dovecot, sink: SmtpSink, **options: Any) -> dict[str, Any]:
    return {
        "account": "support",
        "address": ADDRESS,
        "display_name": "Kefu 客服",
        "imap": dovecot.imap_section("support"),
        "smtp": {"host": "127.0.0.1", "port": sink.port, "ssl": False, "starttls": False},
        "initial": "all",
        "retry_s": 0.2,
        "poll_s": 0.5,
        "lock_ttl_ms": 3000,
        "simulate": {"reply_imap": dovecot.imap_section("customer")},
        **options,
    }


def gateway_config(redis_url: str, mongo_url: str, account: dict[str, Any]) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "pipeline": {"claim_idle_ms": 800, "outbox_backoff_s": 0.05, "outbox_max_attempts": 3},
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {"email": [account]},
    }


@dataclass
class MailHarness:
    client: TestClient[Any, Any]
    dovecot: Dovecot
    sink: SmtpSink
    account: dict[str, Any]

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]

    @property
    def channel(self) -> EmailChannel:
        channel = self.runtime.channel("email", "support")
        assert isinstance(channel, EmailChannel)
        return channel


@pytest.fixture
async def mail_gateway(aiohttp_client: Any, dovecot: Dovecot, sink: SmtpSink, redis_url: str, mongo_url: str, redis: Any) -> MailHarness:
    account = email_account(dovecot, sink)
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, account), env={})
    client = await aiohttp_client(build_app(settings))
    return MailHarness(client=client, dovecot=dovecot, sink=sink, account=account)
