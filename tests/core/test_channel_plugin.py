"""Adding a channel is one class plus one line: a tiny test-only channel, registered in
the ``channel_classes`` given to the gateway, works end to end, preferences included.

Nothing else learns about it: its webhook route, its customers' addresses (the recipient
field its class names), its display name and its notifications all come from the class.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.messages import InboundMessage, MessageKind
from channels import CHANNEL_CLASSES
from channels.base import Received, WebhookRequest
from channels.errors import WebhookRejected
from preferences.services import SERVICES
from tests.harness import Harness, gateway_config
from tests.preferences.conftest import RecordingChannel

KEY = "plugin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


class LoopbackChannel(RecordingChannel):
    """A JSON webhook in, a list of sent replies out."""

    name = "loopback"
    display_name = {"zh": "回环", "en": "loopback"}
    recipient_field = "handle"

    def receive(self, request: WebhookRequest) -> Received:
        try:
            data = json.loads(request.body)
            sender, text, mid = str(data["from"]), str(data["text"]), str(data["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(f"not a loopback message: {exc}") from None
        message = InboundMessage(
            channel=self.name, account=self.account, sender=sender, conversation=f"{self.name}:{self.account}:{sender}",
            kind=MessageKind.TEXT, platform_id=mid, timestamp=time.time(), text=text,
        )
        return Received((message,), ack_body="ok")


async def test_a_test_only_channel_works_end_to_end_preferences_included(
    aiohttp_client: Any, redis_url: str, mongo_url: str, redis: Any
) -> None:
    cfg = gateway_config(redis_url, mongo_url, "http://127.0.0.1:9")
    cfg["channels"] = {"loopback": [{"account": "lab"}]}
    cfg["api"] = {"keys": [{"key": KEY, "scopes": ["prefs:read", "prefs:write", "notify"]}]}
    cfg["preferences"] = {"due_interval_s": 0.1}
    app = build_app(settings_from_mapping(cfg, env={}), channel_classes=[*CHANNEL_CLASSES, LoopbackChannel])
    h = Harness(client=await aiohttp_client(app), fake=None)  # type: ignore[arg-type]
    channel = h.runtime.channel("loopback", "lab")
    assert isinstance(channel, LoopbackChannel)

    # A customer writes in through the channel's own webhook and gets the bot's answer.
    resp = await h.client.post("/loopback/lab", data=json.dumps({"from": "ada", "text": "hello there", "id": "m1"}))
    assert resp.status == 200 and await resp.text() == "ok"
    [echo] = await channel.wait_sent(1)
    assert echo.recipient == "ada" and "hello there" in echo.text

    # The preferences know the channel from its class: its name and recipient field.
    settings = {"channels": ["loopback"], "addresses": {"loopback": {"account": "lab", "handle": "ada"}}, "quiet_hours": None}
    resp = await h.client.put("/api/preferences/customers/ada-1", json={"settings": settings}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    wrong = {"addresses": {"loopback": {"account": "lab", "openid": "ada"}}}
    resp = await h.client.patch("/api/preferences/customers/ada-1", json={"settings": wrong}, headers=AUTH)
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "addresses.loopback.openid"
    summary = h.client.app[SERVICES].renderer.render("chat_summary", "zh", s={"channels": ["loopback", "wechat"]})
    assert "回环 → 微信" in summary

    # And a notification reaches the customer on it.
    resp = await h.client.post(
        "/api/preferences/notify",
        json={"customer_id": "ada-1", "topic": "account", "importance": "normal", "data": {"title": "Your invoice is ready"}, "key": "inv-1"},
        headers=AUTH,
    )
    assert resp.status == 202 and (await resp.json())["channel"] == "loopback"
    sent = (await channel.wait_sent(2))[1]
    assert sent.recipient == "ada" and sent.conversation == "loopback:lab:ada" and "Your invoice is ready" in sent.text


def test_builtin_channels_state_their_facts_in_notification_order() -> None:
    """Every channel class states the facts the other packages derive their tables from."""
    for cls in CHANNEL_CLASSES:
        assert cls.recipient_field and set(cls.display_name) == {"zh", "en"}, cls.name
    assert [c.name for c in CHANNEL_CLASSES] == ["wechat", "wecom", "wecom_kf", "dingtalk", "email"]
