"""Messages cross Redis as JSON: every field must survive the round trip.

The to_json methods are hand-built for speed, so a field added to the dataclass and
forgotten there would silently vanish between the worker and the sender.
"""

from __future__ import annotations

import dataclasses

from bot.messages import Article, InboundMessage, MediaRef, MessageKind, OutboundMessage, ReplyKind


def test_outbound_message_round_trips_every_field() -> None:
    msg = OutboundMessage(
        channel="dingtalk", account="corp", recipient="u1", conversation="dingtalk:corp:u1", idempotency_key="k:1",
        kind=ReplyKind.NEWS, text="维修进度", media_id="m", image_path="/tmp/qr.png",
        articles=(Article("标题", "说明", "https://x.example/1", "https://x.example/p.png"),),
        in_reply_to="wechat:a:1", topic="repair", extra=(("session_webhook", "https://x.example/hook"),),
    )
    # Every field set to a non-default value, so a dropped field cannot pass unnoticed.
    defaults = OutboundMessage(channel="", account="", recipient="", conversation="", idempotency_key="")
    for f in dataclasses.fields(OutboundMessage):
        assert getattr(msg, f.name) != getattr(defaults, f.name), f.name
    assert OutboundMessage.from_json(msg.to_json()) == msg


def test_inbound_message_round_trips_every_field() -> None:
    msg = InboundMessage(
        channel="wechat", account="a", sender="o1", conversation="wechat:a:o1", kind=MessageKind.VOICE,
        platform_id="123", timestamp=1.5, text="空调不制冷",
        event="click", event_key="MENU_REPAIR", media=MediaRef("mid", "amr", "https://x.example/m", "空调"),
        location=(31.2, 121.5), link_url="https://x.example/l", extra=(("agent_id", "1000002"),),
    )
    assert InboundMessage.from_json(msg.to_json()) == msg
