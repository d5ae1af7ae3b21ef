"""DingTalk robot: callback signature, parser, API client, stream intake, to-dos, fake API."""

from channels.dingtalk.channel import DingTalkChannel

__all__ = ["DingTalkChannel"]
