"""WeChat payloads of every kind become the one message type; hostile XML is refused."""

from __future__ import annotations

import pytest

from bot.messages import MessageKind
from channels.errors import MalformedPayload
from channels.wechat.parser import to_message
from channels.xml import parse_flat_xml
from tests.conftest import FIXTURES

WECHAT = FIXTURES / "wechat"


def parse(name: str):  # type: ignore[no-untyped-def]
    raw = (WECHAT / name).read_text(encoding="utf-8")
    return to_message(parse_flat_xml(raw), "demo", raw)


def test_text() -> None:
    msg = parse("text.xml")
    assert msg.kind is MessageKind.TEXT
    assert msg.text == "我的XK-8800不制冷了"
    assert msg.platform_id == "1234567890123456"
    assert msg.sender == "fromUser"
    assert msg.conversation == "wechat:demo:fromUser"
    assert msg.key == "wechat:demo:1234567890123456"
    assert msg.timestamp == 1348831860


def test_voice_keeps_media_format_and_recognition() -> None:
    msg = parse("voice.xml")
    assert msg.kind is MessageKind.VOICE
    assert msg.media is not None
    assert msg.media.media_id == "media_id_voice"
    assert msg.media.format == "format"
    assert msg.media.recognition == "空调不制冷"


def test_image_location_link() -> None:
    image = parse("image.xml")
    assert image.kind is MessageKind.IMAGE and image.media and image.media.url.endswith("example.jpg")
    loc = parse("location.xml")
    assert loc.kind is MessageKind.LOCATION and loc.location == (23.134521, 113.358803) and loc.text == "广州市天河区"
    link = parse("link.xml")
    assert link.kind is MessageKind.LINK and link.link_url == "https://mp.weixin.qq.com/"


@pytest.mark.parametrize(
    ("name", "event", "key"),
    [
        ("event_subscribe.xml", "subscribe", ""),
        ("event_unsubscribe.xml", "unsubscribe", ""),
        ("event_scan.xml", "scan", "SCENE_VALUE"),
        ("event_click.xml", "click", "EVENTKEY"),
        ("event_view.xml", "view", "www.qq.com"),
    ],
)
def test_events_dedup_by_sender_and_time(name: str, event: str, key: str) -> None:
    msg = parse(name)
    assert msg.kind is MessageKind.EVENT
    assert msg.event == event
    assert msg.event_key == key
    # WeChat's rule (sender + CreateTime), with the event name to keep two events of
    # one second apart.
    assert msg.platform_id == f"FromUser:{int(msg.timestamp)}:{event}"


def test_unknown_kind_is_kept_not_refused() -> None:
    msg = parse("shortvideo.xml")
    assert msg.kind is MessageKind.UNKNOWN
    assert "shortvideo" in msg.raw


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
def test_hostile_xml_refused(name: str) -> None:
    with pytest.raises(MalformedPayload, match="DTD"):
        parse_flat_xml((WECHAT / name).read_bytes())


@pytest.mark.parametrize(
    "body",
    [b"", b"<xml>", b"not xml", b"<html><body/></html>", b"\xff\xfe<xml/>"],
)
def test_broken_xml_refused(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_flat_xml(body)


def test_missing_required_fields_refused() -> None:
    with pytest.raises(MalformedPayload):
        to_message(parse_flat_xml(b"<xml><MsgType>text</MsgType></xml>"), "demo", "")
    with pytest.raises(MalformedPayload):
        to_message(parse_flat_xml(b"<xml><FromUserName>a</FromUserName><MsgType>voice</MsgType><CreateTime>1</CreateTime></xml>"), "demo", "")
