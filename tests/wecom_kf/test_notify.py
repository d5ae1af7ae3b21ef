"""A customer who reaches us through WeChat customer service (微信客服) can be notified there.

The whole path: the customer writes through the signed KF callback and ``kf/sync_msg``,
gets a preference record on first contact (as the repair form makes one), and a CRM's
notification leaves through the outbox and ``kf/send_msg`` to the same KF account.
Real Redis and MongoDB, the fake KF API on loopback.
"""

from __future__ import annotations

from typing import Any

from bot.app import build_app
from bot.config import settings_from_mapping
from skills.services import SKILL_SERVICES
from tests.wecom.support import Gateway, kf_config
from tests.wecom_kf.test_end_to_end import KF, Fake, announce

KEY = "kf-crm-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
P = "/api/preferences"


async def start(aiohttp_client: Any, fake_kf: Fake, redis_url: str, mongo_url: str) -> Gateway:
    config = kf_config(redis_url, mongo_url, str(fake_kf[1].make_url("")))
    config["api"] = {"keys": [{"key": KEY, "scopes": ["prefs:read", "prefs:write", "notify"]}]}
    config["preferences"] = {"due_interval_s": 0.1}
    return Gateway(await aiohttp_client(build_app(settings_from_mapping(config, env={}))))


async def notify(gateway: Gateway, customer: str, key: str) -> dict[str, Any]:
    resp = await gateway.client.post(
        f"{P}/notify",
        json={"customer_id": customer, "topic": "account", "importance": "normal", "data": {"title": "您的报修单已完成"}, "key": key},
        headers=AUTH,
    )
    assert resp.status == 202, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_first_contact_on_wecom_kf_makes_a_customer_notified_there(
    aiohttp_client: Any, fake_kf: Fake, redis_url: str, mongo_url: str, redis: Any
) -> None:
    fake, _ = fake_kf
    gateway = await start(aiohttp_client, fake_kf, redis_url, mongo_url)
    fake.add_customer_message(KF, "wmNotifyMe", "我的冰箱坏了")
    await announce(gateway, fake)
    await fake.wait_sent(1)  # the bot's answer to the message
    inbound = await gateway.runtime.store.messages.find_one({"direction": "in", "sender": "wmNotifyMe"})
    assert inbound is not None
    # What the repair form does on first contact: the customer gets a preference record.
    notifier = gateway.client.app[SKILL_SERVICES].notifier
    cid = await notifier.customer("wecom_kf", "kf", "wmNotifyMe", "zh", conversation=inbound["conversation"])
    view = await (await gateway.client.get(f"{P}/customers/{cid}", headers=AUTH)).json()
    assert view["settings"]["addresses"]["wecom_kf"] == {"account": "kf", "external_userid": "wmNotifyMe", "open_kfid": KF}
    resp = await gateway.client.patch(f"{P}/customers/{cid}", json={"settings": {"quiet_hours": None}}, headers=AUTH)
    assert resp.status == 200

    decision = await notify(gateway, cid, "kf-done-1")
    assert (decision["action"], decision["channel"]) == ("send", "wecom_kf")
    sent = (await fake.wait_sent(2))[1]
    assert (sent["touser"], sent["open_kfid"], sent["msgtype"]) == ("wmNotifyMe", KF, "text")
    assert "您的报修单已完成" in sent["text"]["content"]


async def test_a_crm_can_give_a_customer_a_wecom_kf_address(
    aiohttp_client: Any, fake_kf: Fake, redis_url: str, mongo_url: str, redis: Any
) -> None:
    fake, _ = fake_kf
    gateway = await start(aiohttp_client, fake_kf, redis_url, mongo_url)
    fake.add_customer_message(KF, "wmFromCrm", "你好")  # opens the 48 h service window
    await announce(gateway, fake)
    await fake.wait_sent(1)
    settings = {
        "channels": ["wecom_kf", "email"],
        "addresses": {"wecom_kf": {"account": "kf", "external_userid": "wmFromCrm", "open_kfid": KF}},
        "quiet_hours": None,
    }
    resp = await gateway.client.put(f"{P}/customers/crm-kf-1", json={"settings": settings}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    bad = await gateway.client.patch(
        f"{P}/customers/crm-kf-1", json={"settings": {"addresses": {"wecom_kf": {"open_kfid": KF}}}}, headers=AUTH
    )
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "addresses.wecom_kf.external_userid"

    decision = await notify(gateway, "crm-kf-1", "kf-crm-1")
    assert (decision["action"], decision["channel"]) == ("send", "wecom_kf")
    sent = (await fake.wait_sent(2))[1]
    assert (sent["touser"], sent["open_kfid"]) == ("wmFromCrm", KF)
    assert "您的报修单已完成" in sent["text"]["content"]
