"""Each channel says until when a free-form reply reaches the customer (the console warns)."""

from __future__ import annotations

import time
from typing import Any

from tests.dingtalk.conftest import DingHarness, ding, fake_dingtalk  # noqa: F401  (fixtures)


async def test_dingtalk_session_webhook_and_staff(ding: DingHarness) -> None:  # noqa: F811
    channel = ding.runtime.channel("dingtalk", "robot")
    assert channel is not None
    now = time.time()
    soon = str(int((now + 600) * 1000))
    deadline = channel.reply_deadline(now, {"sessionWebhook": "https://x", "sessionWebhookExpiredTime": soon})
    assert deadline is not None and now + 500 < deadline <= now + 600
    # A member of the organisation is reached through the robot API at any time; so is a group.
    assert channel.reply_deadline(now, {"sessionWebhookExpiredTime": soon, "senderStaffId": "s1"}) is None
    assert channel.reply_deadline(now, {"conversationType": "2"}) is None
    assert channel.reply_deadline(now, {}) == now  # nothing to reply through


async def test_wechat_48_hours(rig: Any) -> None:
    wechat = rig.harness.runtime.channel("wechat", "demo")
    assert wechat.reply_deadline(1000.0, {}) == 1000.0 + 48 * 3600
