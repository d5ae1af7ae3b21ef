"""Session services and the gateway harness shared by every test package."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.harness import Harness, forget_served_apps, gateway_config
from tests.services import mongo_server, redis_server

# The real Rasa server: one per test process, whichever packages use it.
pytest_plugins = ["tests.rasa"]

OUR_PACKAGES = ["bot", "channels", "skills", "speech", "preferences", "admin", "knowledge", "portal", "webui"]


@pytest.fixture(autouse=True)
def blockbuster(request: pytest.FixtureRequest) -> Iterator[BlockBuster | None]:
    """Fail any test in which our code makes a blocking call inside the event loop."""
    if "no_blockbuster" in request.keywords:
        yield None
        return
    with blockbuster_ctx(OUR_PACKAGES) as bb:
        # PyMongo stats /.dockerenv once when a client is built (driver metadata); that is
        # startup, not the message path.
        bb.functions["os.stat"].can_block_in("pymongo/pool_options.py", {"get_container_env_info"})
        # redis-py 8 reads its own package version when it opens a pooled connection.
        for func in ("os.stat", "os.listdir", "os.scandir", "io.BufferedReader.read", "io.TextIOWrapper.read"):
            if func in bb.functions:
                bb.functions[func].can_block_in("redis/utils.py", {"get_lib_version"})
        yield bb


@pytest.fixture(autouse=True)
def served_apps_forgotten() -> Iterator[None]:
    """Each test's apps are freed when it ends, not kept by aiohttp's middleware cache
    for the rest of the run (see :func:`tests.harness.forget_served_apps`)."""
    yield
    forget_served_apps()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def mongo_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongo_server(tmp_path_factory.mktemp("mongo")) as url:
        yield url


@pytest.fixture
def mongo_url(mongo_base_url: str) -> str:
    """A database of its own for each test."""
    return f"{mongo_base_url.rstrip('/')}/kefu_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    yield client
    await client.drop_database(client.get_default_database().name)
    await client.close()


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def fake_wechat(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeChatAPI, TestServer]]:
    fake = FakeWeChatAPI()
    server = await aiohttp_server(fake.app())
    yield fake, server


@pytest.fixture
async def gateway(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    fake, server = fake_wechat
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, str(server.make_url(""))), env={})
    client = await aiohttp_client(build_app(settings))
    return Harness(client=client, fake=fake)


@pytest.fixture
async def web_only(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    """The webhook without workers: what it enqueues stays in the stream for inspection."""
    fake, server = fake_wechat
    settings = settings_from_mapping(gateway_config(redis_url, mongo_url, str(server.make_url(""))), env={})
    client = await aiohttp_client(build_app(settings, role="web"))
    return Harness(client=client, fake=fake)

