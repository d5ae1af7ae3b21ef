"""Every robot message kind becomes one InboundMessage; unknown kinds never crash."""

from __future__ import annotations

import json

import pytest

from bot.messages import MessageKind
from channels.dingtalk.parser import loads, to_message
from channels.dingtalk.simulator import robot_message
from channels.errors import MalformedPayload


def parse(data: dict[str, object]) -> object:
    return to_message(data, "robot", json.dumps(data))


def test_text_and_hints() -> None:
    data = robot_message("staff1", text="  打印机卡纸了 ", session_webhook="https://oapi.dingtalk.com/robot/sendBySession?session=x")
    msg = to_message(data, "robot", "{}")
    assert msg.kind is MessageKind.TEXT and msg.text == "打印机卡纸了"
    assert msg.sender == "staff1" and msg.conversation == "dingtalk:robot:cidstaff1=="
    assert msg.platform_id == data["msgId"]
    assert msg.hint("sessionWebhook").startswith("https://oapi.dingtalk.com/")
    assert msg.hint("sessionWebhookExpiredTime") == str(data["sessionWebhookExpiredTime"])
    assert msg.hint("conversationType") == "1" and msg.hint("senderStaffId") == "staff1"


def test_rich_text() -> None:
    data = robot_message("s", msgtype="richText", content={"richText": [{"text": "看图"}, {"pictureDownloadCode": "p1", "downloadCode": "d1", "type": "picture"}, {"text": "：坏了"}]})
    msg = to_message(data, "robot", "")
    assert msg.kind is MessageKind.TEXT and msg.text == "看图：坏了"
    assert msg.media is not None and msg.media.media_id == "d1"


def test_picture() -> None:
    msg = to_message(robot_message("s", msgtype="picture", content={"downloadCode": "pic1", "pictureDownloadCode": "p"}), "robot", "")
    assert msg.kind is MessageKind.IMAGE and msg.media is not None and msg.media.media_id == "pic1"


def test_audio_keeps_recognition() -> None:
    msg = to_message(robot_message("s", msgtype="audio", content={"duration": 4000, "downloadCode": "aud1", "recognition": "空调不制冷"}), "robot", "")
    assert msg.kind is MessageKind.VOICE
    assert msg.media is not None and msg.media.media_id == "aud1" and msg.media.recognition == "空调不制冷"


def test_file() -> None:
    msg = to_message(robot_message("s", msgtype="file", content={"downloadCode": "f1", "fileName": "报修单.PDF", "spaceId": "1", "fileId": "2"}), "robot", "")
    assert msg.kind is MessageKind.FILE and msg.media is not None and msg.media.format == "pdf"


def test_group_and_external_sender() -> None:
    data = robot_message("ext", text="hi", group=True, staff_id=False)
    msg = to_message(data, "robot", "")
    assert msg.sender == "$:LWCP_v1:$ext" and msg.hint("conversationType") == "2"
    assert msg.hint("senderStaffId") == ""


@pytest.mark.parametrize("msgtype", ["interactiveCard", "markdown", "", "chatRecord"])
def test_unknown_kinds(msgtype: str) -> None:
    msg = to_message(robot_message("s", msgtype=msgtype, content={"x": 1}), "robot", "")
    assert msg.kind is MessageKind.UNKNOWN


def test_content_as_json_string() -> None:
    data = robot_message("s", msgtype="picture")
    data["content"] = json.dumps({"downloadCode": "c9"})
    assert to_message(data, "robot", "").media is not None


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", b"\xff\xfe", b'"x"'])
def test_malformed_body(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        loads(body)


@pytest.mark.parametrize("drop", ["msgId", "conversationId"])
def test_missing_ids(drop: str) -> None:
    data = robot_message("s", text="x")
    del data[drop]
    with pytest.raises(MalformedPayload):
        to_message(data, "robot", "")


def test_audio_without_code() -> None:
    with pytest.raises(MalformedPayload):
        to_message(robot_message("s", msgtype="audio", content={"duration": 1}), "robot", "")
