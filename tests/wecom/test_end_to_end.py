"""The WeCom app channel through the real gateway: real Redis and MongoDB, fake WeCom API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from bot.messages import MediaRef
from channels.errors import PermanentSendError
from channels.wecom.channel import WeComChannel
from channels.wecom.fake_api import FakeWeComAPI
from channels.wecom.simulator import (
    SimulateOptions,
    app_message_xml,
    event_xml,
    signed_callback,
    simulate,
    text_xml,
    verification_query,
)
from tests.conftest import FIXTURES
from tests.services import free_port
from tests.wecom.support import CORP_ID, OTHER_KEY, WECOM_ACCOUNT, Gateway, next_msg_id

Fake = tuple[FakeWeComAPI, TestServer]


async def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_url_verification_returns_echostr_verbatim(web_only: Gateway) -> None:
    resp = await web_only.client.get("/wecom/corp", params=verification_query(WECOM_ACCOUNT, "6173259347812345678"))
    assert resp.status == 200
    assert await resp.text() == "6173259347812345678"
    forged = {**verification_query(WECOM_ACCOUNT, "x"), "msg_signature": "0" * 40}
    assert (await web_only.client.get("/wecom/corp", params=forged)).status == 403
    assert (await web_only.client.get("/wecom/nobody", params=verification_query(WECOM_ACCOUNT, "x"))).status == 404


async def test_text_in_reply_out(gateway: Gateway, fake_wecom: Fake) -> None:
    fake, _ = fake_wecom
    resp = await gateway.say("zhangsan", "你好，打印机卡纸了")
    assert resp.status == 200 and await resp.text() == ""
    (sent,) = await fake.wait_sent(1)
    assert sent["touser"] == "zhangsan" and sent["agentid"] == 1000002 and sent["msgtype"] == "text"
    assert "你好，打印机卡纸了" in sent["text"]["content"]
    store = gateway.runtime.store

    async def reply_marked_sent() -> bool:
        out = await store.messages.find_one({"direction": "out", "recipient": "zhangsan"})
        return bool(out and out["status"] == "sent")

    await wait_for(reply_marked_sent)
    inbound = await store.messages.find_one({"direction": "in", "sender": "zhangsan"})
    assert inbound is not None and inbound["channel"] == "wecom" and inbound["conversation"] == "wecom:corp:zhangsan"
    assert fake.token_calls == 1


async def test_enter_agent_gets_the_welcome(gateway: Gateway, fake_wecom: Fake) -> None:
    query, body = signed_callback(WECOM_ACCOUNT, event_xml(CORP_ID, "lisi", "enter_agent"))
    assert (await gateway.post("/wecom/corp", query, body)).status == 200
    (sent,) = await fake_wecom[0].wait_sent(1)
    assert sent["touser"] == "lisi" and "欢迎" in sent["text"]["content"]


async def test_unknown_kind_is_stored_and_answered_without_a_crash(gateway: Gateway, fake_wecom: Fake) -> None:
    xml = app_message_xml(CORP_ID, "wangwu", "video", {"MediaId": "V1", "ThumbMediaId": "T1", "MsgId": next_msg_id()})
    query, body = signed_callback(WECOM_ACCOUNT, xml)
    assert (await gateway.post("/wecom/corp", query, body)).status == 200

    async def stored() -> bool:
        return await gateway.runtime.store.messages.count_documents({"direction": "in", "kind": "unknown"}) == 1

    await wait_for(stored)
    assert await gateway.runtime.store.dead_letters.count_documents({}) == 0


async def test_concurrent_retries_are_answered_once(gateway: Gateway, fake_wecom: Fake) -> None:
    fake, _ = fake_wecom
    msg_id = next_msg_id()
    responses = await asyncio.gather(*(gateway.say("zhaoliu", "在吗", msg_id) for _ in range(4)))
    assert [r.status for r in responses] == [200] * 4
    await fake.wait_sent(1)
    await asyncio.sleep(0.8)  # room for a wrong second reply to show up
    assert len(fake.sent_to("zhaoliu")) == 1


async def test_rejected_token_is_refreshed_once_and_the_send_retried(gateway: Gateway, fake_wecom: Fake) -> None:
    fake, _ = fake_wecom
    await gateway.say("u1", "one")
    await fake.wait_sent(1)
    fake.revoke_tokens()  # as when another process fetched a new token
    await gateway.say("u1", "two")
    await fake.wait_sent(2)
    assert fake.token_calls == 2
    assert fake.calls["/cgi-bin/message/send"] == 3  # one refused with 40014, then the retry


async def test_busy_platform_is_retried_by_the_outbox(gateway: Gateway, fake_wecom: Fake) -> None:
    fake, _ = fake_wecom
    fake.fail_next(1, errcode=-1)
    await gateway.say("u2", "hello")
    (sent,) = await fake.wait_sent(1)
    assert sent["touser"] == "u2"


async def test_voice_note_is_downloaded_through_media_get(gateway: Gateway, fake_wecom: Fake) -> None:
    fake, _ = fake_wecom
    fake.add_media(b"#!AMR\n\x00\x01", media_id="VOICE_1")
    channel = gateway.runtime.channel("wecom", "corp")
    assert isinstance(channel, WeComChannel)
    assert await channel.fetch_media(MediaRef("VOICE_1", "amr")) == b"#!AMR\n\x00\x01"
    try:
        await channel.fetch_media(MediaRef("missing"))
    except PermanentSendError as exc:
        assert exc.errcode == 40007
    else:
        raise AssertionError("a missing media id must fail")


async def test_forged_signature_changes_nothing(web_only: Gateway) -> None:
    query, body = signed_callback(WECOM_ACCOUNT, text_xml(CORP_ID, "evil", "hi", next_msg_id()))
    query["msg_signature"] = "f" * 40
    resp = await web_only.post("/wecom/corp", query, body)
    assert resp.status == 403 and "bad_signature" in await resp.text()
    await web_only.assert_nothing_kept()


async def test_plaintext_post_is_refused(web_only: Gateway) -> None:
    # WeCom never posts plaintext; a body without <Encrypt> is not a WeCom callback.
    xml = text_xml(CORP_ID, "evil", "hi", next_msg_id())
    query, _ = signed_callback(WECOM_ACCOUNT, xml)
    resp = await web_only.post("/wecom/corp", query, xml.encode())
    assert resp.status == 400
    await web_only.assert_nothing_kept()


async def test_wrong_aes_key_changes_nothing(web_only: Gateway) -> None:
    impostor = {**WECOM_ACCOUNT, "encoding_aes_key": OTHER_KEY}
    query, body = signed_callback(impostor, text_xml(CORP_ID, "evil", "hi", next_msg_id()))
    resp = await web_only.post("/wecom/corp", query, body)
    assert resp.status == 400 and "decrypt_failed" in await resp.text()
    await web_only.assert_nothing_kept()


async def test_other_corp_id_changes_nothing(web_only: Gateway) -> None:
    impostor = {**WECOM_ACCOUNT, "corp_id": "ww9999999999999999"}
    query, body = signed_callback(impostor, text_xml("ww9999999999999999", "evil", "hi", next_msg_id()))
    assert (await web_only.post("/wecom/corp", query, body)).status == 400
    await web_only.assert_nothing_kept()


async def test_hostile_xml_outside_and_inside_the_ciphertext(web_only: Gateway) -> None:
    bomb = (FIXTURES / "wechat" / "billion_laughs.xml").read_text()
    query, _ = signed_callback(WECOM_ACCOUNT, "<xml/>")
    resp = await web_only.post("/wecom/corp", query, bomb.encode())
    assert resp.status == 400
    # Correctly signed and encrypted, hostile once decrypted.
    query, body = signed_callback(WECOM_ACCOUNT, bomb)
    resp = await web_only.post("/wecom/corp", query, body)
    assert resp.status == 400 and "malformed" in await resp.text()
    xxe = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><FromUserName>&e;</FromUserName></xml>'
    query, body = signed_callback(WECOM_ACCOUNT, xxe)
    assert (await web_only.post("/wecom/corp", query, body)).status == 400
    await web_only.assert_nothing_kept()


async def test_invalid_recipient_is_a_dead_letter(gateway: Gateway, fake_wecom: Fake) -> None:
    fake = fake_wecom[0]
    fake.invalid_users.add("leaver")
    await gateway.say("leaver", "hello")
    store = gateway.runtime.store

    async def dead() -> bool:
        return await store.dead_letters.count_documents({"kind": "outbound"}) == 1

    await wait_for(dead)
    letter = await store.dead_letters.find_one({"kind": "outbound"})
    assert letter is not None and "invalid" in letter["reason"]
    assert fake.calls["/cgi-bin/message/send"] == 1  # permanent: not retried
    assert fake.sent_to("leaver") == []


async def test_simulate_against_the_mounted_fake(aiohttp_server: Any, aiohttp_client: Any, redis_url: str, mongo_url: str, redis: Any) -> None:
    port = free_port()
    account = {**WECOM_ACCOUNT, "api_base_url": "/_sim/wecom"}
    config = {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "simulator": True,
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {"wecom": [account]},
    }
    server = await aiohttp_server(build_app(settings_from_mapping(config, env={})), port=port)
    await aiohttp_client(server)
    async with aiohttp.ClientSession() as session:
        replies = await simulate(session, f"http://127.0.0.1:{port}", account, SimulateOptions(text="你好", wait_s=10))
        assert len(replies) == 1 and "你好" in replies[0]
        replies = await simulate(session, f"http://127.0.0.1:{port}", account, SimulateOptions(sender="new", event="enter_agent", wait_s=10))
        assert len(replies) == 1 and "欢迎" in replies[0]
