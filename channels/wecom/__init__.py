"""WeCom (企业微信) self-built app: crypto, parser, API client, channel, fake API.

The same set as :mod:`channels.wechat`, the way wechatpy repeats it under
``wechatpy/work/``; :mod:`channels.wecom_kf` builds on the crypto and the client.
"""

from channels.wecom.channel import WeComChannel

__all__ = ["WeComChannel"]
