"""kf/sync_msg items and the kf_msg_or_event callback -> InboundMessage.

Item shapes follow the "读取消息" page (https://kf.weixin.qq.com/api/doc/path/94745).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.messages import MessageKind
from channels.errors import MalformedPayload
from channels.wecom_kf.parser import callback_to_message, item_to_message, split_conversation
from channels.wecom_kf.simulator import callback_xml
from channels.xml import parse_flat_xml

KF = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
USER = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"


def item(msgtype: str, body: dict[str, Any], *, origin: int = 3, **top: Any) -> dict[str, Any]:
    return {
        "msgid": "from_msgid_4622416642169452483",
        "open_kfid": KF,
        "external_userid": USER,
        "send_time": 1615478585,
        "origin": origin,
        "msgtype": msgtype,
        msgtype: body,
        **top,
    }


def test_text_keeps_open_kfid_for_the_reply() -> None:
    msg = item_to_message(item("text", {"content": "你好", "menu_id": "101"}), "kf")
    assert msg is not None
    assert (msg.kind, msg.text, msg.sender, msg.platform_id) == (MessageKind.TEXT, "你好", USER, "from_msgid_4622416642169452483")
    assert msg.conversation == f"wecom_kf:kf:{KF}:{USER}"
    assert msg.hint("open_kfid") == KF and msg.hint("menu_id") == "101"
    assert split_conversation(msg.conversation) == (KF, USER)
    assert msg.timestamp == 1615478585.0


@pytest.mark.parametrize(("voice_format", "expected"), [(0, "amr"), (1, "silk")])
def test_voice_format_follows_the_sync_parameter(voice_format: int, expected: str) -> None:
    msg = item_to_message(item("voice", {"media_id": "MEDIA_V"}), "kf", voice_format=voice_format)
    assert msg is not None and msg.kind is MessageKind.VOICE
    assert msg.media is not None and (msg.media.media_id, msg.media.format) == ("MEDIA_V", expected)


def test_image_location_link_file_unknown() -> None:
    image = item_to_message(item("image", {"media_id": "IMG"}), "kf")
    assert image is not None and image.kind is MessageKind.IMAGE
    loc = item_to_message(item("location", {"latitude": 23.1, "longitude": 113.3, "name": "天河", "address": "广州"}), "kf")
    assert loc is not None and loc.location == (23.1, 113.3) and loc.text == "天河"
    link = item_to_message(item("link", {"title": "T", "desc": "D", "url": "https://x", "pic_url": "https://p"}), "kf")
    assert link is not None and (link.text, link.link_url) == ("T", "https://x")
    file = item_to_message(item("file", {"media_id": "F"}), "kf")
    assert file is not None and file.kind is MessageKind.FILE
    odd = item_to_message(item("miniprogram", {"title": "m", "appid": "wx1"}), "kf")
    assert odd is not None and odd.kind is MessageKind.UNKNOWN and '"miniprogram"' in odd.raw


def test_enter_session_event_names_its_customer_inside_the_event() -> None:
    event = {"event_type": "enter_session", "open_kfid": KF, "external_userid": USER, "scene": "123", "scene_param": "abc", "welcome_code": "WC"}
    raw = {"msgid": "ev1", "send_time": 1, "origin": 4, "msgtype": "event", "event": event}
    msg = item_to_message(raw, "kf")
    assert msg is not None and msg.kind is MessageKind.EVENT and msg.event == "enter_session"
    assert msg.sender == USER and msg.event_key == "abc" and msg.hint("welcome_code") == "WC"


def test_servicer_messages_and_account_events_are_not_for_the_bot() -> None:
    assert item_to_message(item("text", {"content": "我是人工客服"}, origin=5, servicer_userid="zhangsan"), "kf") is None
    status = {"msgid": "ev2", "send_time": 1, "origin": 4, "msgtype": "event", "event": {"event_type": "servicer_status_change", "open_kfid": KF}}
    assert item_to_message(status, "kf") is None


def test_message_without_customer_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        item_to_message(item("text", {"content": "x"}, external_userid=""), "kf")


def test_callback_is_deduplicated_by_its_token_and_time() -> None:
    xml = callback_xml("ww1", KF, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", create_time=1348831860)
    msg = callback_to_message(parse_flat_xml(xml), "kf", xml)
    assert msg.kind is MessageKind.EVENT and msg.event == "kf_msg_or_event"
    assert msg.platform_id == "kf_msg_or_event:ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR:1348831860"
    later = callback_xml("ww1", KF, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", create_time=1348831867)
    assert callback_to_message(parse_flat_xml(later), "kf", later).key != msg.key  # a new callback: a new sync
    assert msg.hint("open_kfid") == KF and msg.hint("sync_token").startswith("ENCA")
    with pytest.raises(MalformedPayload):
        callback_to_message(parse_flat_xml(callback_xml("ww1", KF, "")), "kf", "")
