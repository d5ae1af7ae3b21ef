"""WeCom customer service (微信客服): customers on WeChat served through WeCom's KF API.

The callback only announces that messages are waiting; the worker fetches them with
``kf/sync_msg`` from a cursor persisted per KF account (see :mod:`channels.wecom_kf.sync`).
Crypto and the token/transport client are WeCom's (:mod:`channels.wecom`).
"""

from channels.wecom_kf.channel import WeComKfChannel

__all__ = ["WeComKfChannel"]
