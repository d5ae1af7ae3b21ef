"""Connections to Redis and MongoDB, or embedded servers when none is configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import BlockingConnectionPool, Redis

from bot.config import Settings
from bot.embedded import EmbeddedServer, start_mongo, start_redis


async def open_stores(settings: Settings) -> tuple[Redis, AsyncMongoClient[Any], list[EmbeddedServer]]:
    """Clients for the configured stores; embedded servers are started for missing URLs
    and returned so that the caller stops them after closing the clients."""
    embedded: list[EmbeddedServer] = []
    redis_url = settings.redis_url
    if not redis_url:
        server = await start_redis(settings.data_dir)
        embedded.append(server)
        redis_url = server.url
    mongo_url = settings.mongo_url
    mongo_options: Mapping[str, Any] = {}
    if not mongo_url:
        server = await start_mongo(settings.data_dir)
        embedded.append(server)
        mongo_url, mongo_options = server.url, server.client_options
    # A blocking pool waits for a free connection instead of failing past max (redis-py 8).
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=64, timeout=5, socket_timeout=5, socket_connect_timeout=2
    )
    redis = Redis(connection_pool=pool)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=3000, connectTimeoutMS=2000, **mongo_options
    )
    return redis, mongo, embedded


async def close_stores(redis: Redis, mongo: AsyncMongoClient[Any], embedded: list[EmbeddedServer]) -> None:
    await redis.aclose()
    await mongo.close()
    for server in reversed(embedded):
        await server.stop()
