"""Kefu's hand-off mirrored in WeCom's service_state for agents who are WeCom servicers."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bot.tokens import TokenCache
from channels.base import ChannelContext
from channels.wecom_kf.channel import WeComKfChannel
from channels.wecom_kf.fake_api import FakeWeComKfAPI
from channels.wecom_kf.parser import conversation_id
from tests.wecom.support import KF_ACCOUNT


async def test_servicer_takes_the_wecom_session_and_gives_it_back(fake_kf: tuple[FakeWeComKfAPI, TestServer], redis: Redis) -> None:
    fake, server = fake_kf
    async with aiohttp.ClientSession() as session:
        ctx = ChannelContext(http=session, redis=redis, tokens=TokenCache(redis))
        section: dict[str, Any] = {**KF_ACCOUNT, "api_base_url": str(server.make_url("")), "servicers": {"alice": "zhangsan"}}
        channel = WeComKfChannel.from_settings(section, ctx)
        conv = conversation_id(channel.account, "wkKF1", "wmCustomer")
        await channel.handoff_changed(conv, "wmCustomer", agent="bob")  # a console-only agent
        assert fake.session("wkKF1", "wmCustomer").history == []
        await channel.handoff_changed(conv, "wmCustomer", agent="alice")
        assert (fake.session("wkKF1", "wmCustomer").state, fake.session("wkKF1", "wmCustomer").servicer_userid) == (3, "zhangsan")
        await channel.handoff_changed(conv, "wmCustomer", agent="")
        assert fake.session("wkKF1", "wmCustomer").history == [3, 1]
