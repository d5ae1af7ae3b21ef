"""WeCom app callback kinds -> InboundMessage (payload shapes from the WeCom docs)."""

from __future__ import annotations

import pytest

from bot.messages import MessageKind
from channels.errors import MalformedPayload
from channels.wecom.parser import to_message
from channels.wecom.simulator import app_message_xml, event_xml, text_xml, voice_xml
from channels.xml import parse_flat_xml

CORP = "ww0123456789abcdef"


def parse(xml: str):  # type: ignore[no-untyped-def]
    return to_message(parse_flat_xml(xml), "corp", xml)


def test_text() -> None:
    msg = parse(text_xml(CORP, "zhangsan", "报修：空调不制冷", 123))
    assert (msg.kind, msg.text, msg.sender, msg.platform_id) == (MessageKind.TEXT, "报修：空调不制冷", "zhangsan", "123")
    assert msg.conversation == "wecom:corp:zhangsan"


def test_voice_keeps_media_id_and_format() -> None:
    msg = parse(voice_xml(CORP, "zhangsan", "MEDIA_1", 124, fmt="AMR"))
    assert msg.kind is MessageKind.VOICE
    assert msg.media is not None and (msg.media.media_id, msg.media.format) == ("MEDIA_1", "amr")


def test_voice_without_media_id_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse(app_message_xml(CORP, "u", "voice", {"Format": "amr", "MsgId": 1}))


def test_image_location_link() -> None:
    image = parse(app_message_xml(CORP, "u", "image", {"PicUrl": "http://p/1.jpg", "MediaId": "IMG", "MsgId": 2}))
    assert image.kind is MessageKind.IMAGE and image.media is not None and image.media.url == "http://p/1.jpg"
    loc = parse(
        app_message_xml(CORP, "u", "location", {"Location_X": "23.134", "Location_Y": "113.358", "Scale": 20, "Label": "广州", "MsgId": 3})
    )
    assert loc.kind is MessageKind.LOCATION and loc.location == (23.134, 113.358) and loc.text == "广州"
    link = parse(app_message_xml(CORP, "u", "link", {"Title": "说明书", "Description": "d", "Url": "https://x/y", "MsgId": 4}))
    assert (link.kind, link.text, link.link_url) == (MessageKind.LINK, "说明书", "https://x/y")


def test_events_are_lower_case_and_deduplicated_by_sender_time_and_name() -> None:
    enter = parse(event_xml(CORP, "u", "enter_agent"))
    sub = parse(event_xml(CORP, "u", "subscribe"))
    assert enter.kind is MessageKind.EVENT and enter.event == "enter_agent"
    assert enter.platform_id != sub.platform_id  # same sender, same second, two events
    click = parse(event_xml(CORP, "u", "click", event_key="MENU_REPAIR"))
    assert click.event_key == "MENU_REPAIR"
    gps = parse(app_message_xml(CORP, "u", "event", {"Event": "LOCATION", "Latitude": "23.1", "Longitude": "113.3", "Precision": "30"}))
    assert gps.event == "location" and gps.location == (23.1, 113.3)


def test_unknown_kind_is_kept_not_refused() -> None:
    xml = app_message_xml(CORP, "u", "video", {"MediaId": "V", "ThumbMediaId": "T", "MsgId": 9})
    msg = parse(xml)
    assert msg.kind is MessageKind.UNKNOWN and msg.platform_id == "9" and msg.raw == xml


def test_missing_sender_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        to_message({"MsgType": "text", "CreateTime": "1"}, "corp", "")
