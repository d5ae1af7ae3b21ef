"""Bad input gets a clear 4xx and a log line, and changes nothing: no record, no queue entry."""

from __future__ import annotations

import logging
import time

import pytest

from channels.wechat.simulator import signed_request, text_xml, verification_query
from tests.conftest import FIXTURES
from tests.harness import PLAIN_ACCOUNT, SAFE_ACCOUNT, Harness, next_msg_id


async def assert_nothing_kept(gateway: Harness) -> None:
    rt = gateway.runtime
    assert await rt.store.messages.count_documents({}) == 0
    assert await rt.redis.xlen(rt.queue.stream) == 0
    assert await rt.redis.keys("kefu:dedup:*") == []


async def post(gateway: Harness, account: str, query: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    return await gateway.client.post(f"/wechat/{account}", params=query, data=body)


async def test_url_verification(web_only: Harness) -> None:
    resp = await web_only.client.get("/wechat/demo", params=verification_query(SAFE_ACCOUNT, "echo-123"))
    assert resp.status == 200 and await resp.text() == "echo-123"
    forged = {**verification_query(SAFE_ACCOUNT, "echo-123"), "signature": "0" * 40}
    resp = await web_only.client.get("/wechat/demo", params=forged)
    assert resp.status == 403


async def test_forged_signature(web_only: Harness, caplog: pytest.LogCaptureFixture) -> None:
    query, body = signed_request(PLAIN_ACCOUNT, text_xml("oEvil", "hi", next_msg_id()))
    query["signature"] = "f" * 40
    with caplog.at_level(logging.WARNING, logger="kefu.webhook"):
        resp = await post(web_only, "plain", query, body)
    assert resp.status == 403
    assert "bad_signature" in await resp.text()
    assert any("rejected" in r.getMessage() and "bad_signature" in r.getMessage() for r in caplog.records)
    await assert_nothing_kept(web_only)


async def test_forged_msg_signature_in_safe_mode(web_only: Harness) -> None:
    query, body = signed_request(SAFE_ACCOUNT, text_xml("oEvil", "hi", next_msg_id()))
    query["msg_signature"] = "0" * 40
    resp = await post(web_only, "demo", query, body)
    assert resp.status == 403
    await assert_nothing_kept(web_only)


async def test_wrong_aes_key(web_only: Harness) -> None:
    # Signed with the right token, encrypted with someone else's key.
    impostor = {**SAFE_ACCOUNT, "encoding_aes_key": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"}
    query, body = signed_request(impostor, text_xml("oEvil", "hi", next_msg_id()))
    resp = await post(web_only, "demo", query, body)
    assert resp.status == 400
    assert "decrypt_failed" in await resp.text()
    await assert_nothing_kept(web_only)


async def test_plaintext_to_safe_mode_account_refused(web_only: Harness) -> None:
    plain_signed = {**SAFE_ACCOUNT, "encoding_aes_key": None}
    query, body = signed_request(plain_signed, text_xml("oEvil", "hi", next_msg_id()))
    resp = await post(web_only, "demo", query, body)
    assert resp.status == 403
    await assert_nothing_kept(web_only)


async def test_stale_timestamp(web_only: Harness) -> None:
    old = str(int(time.time()) - 3600)
    query, body = signed_request(PLAIN_ACCOUNT, text_xml("oEvil", "hi", next_msg_id()), timestamp=old)
    resp = await post(web_only, "plain", query, body)
    assert resp.status == 403
    assert "stale_timestamp" in await resp.text()
    await assert_nothing_kept(web_only)


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
@pytest.mark.parametrize("account", [PLAIN_ACCOUNT, SAFE_ACCOUNT], ids=["plaintext", "safe"])
async def test_hostile_xml(web_only: Harness, name: str, account: dict[str, str]) -> None:
    query, body = signed_request(account, (FIXTURES / "wechat" / name).read_text())
    resp = await post(web_only, account["account"], query, body)
    assert resp.status == 400
    assert "malformed" in await resp.text()
    await assert_nothing_kept(web_only)


@pytest.mark.parametrize("xml", ["<xml><Content>unclosed", "<xml></xml>", "<notxml/>", "\x00\x01garbage"])
async def test_broken_xml(web_only: Harness, xml: str) -> None:
    query, body = signed_request(PLAIN_ACCOUNT, xml)
    resp = await post(web_only, "plain", query, body)
    assert resp.status == 400
    await assert_nothing_kept(web_only)


async def test_encrypted_envelope_without_encrypt_element(web_only: Harness) -> None:
    query, _ = signed_request(SAFE_ACCOUNT, text_xml("oEvil", "hi", next_msg_id()))
    resp = await post(web_only, "demo", query, b"<xml><ToUserName>x</ToUserName></xml>")
    assert resp.status == 400
    await assert_nothing_kept(web_only)


async def test_huge_body(web_only: Harness) -> None:
    xml = text_xml("oBig", "x" * 400_000, next_msg_id())
    query, body = signed_request(PLAIN_ACCOUNT, xml)
    resp = await post(web_only, "plain", query, body)
    assert resp.status == 413
    await assert_nothing_kept(web_only)


async def test_unknown_account(web_only: Harness) -> None:
    query, body = signed_request({**PLAIN_ACCOUNT, "account": "nobody"}, text_xml("o", "hi", next_msg_id()))
    resp = await post(web_only, "nobody", query, body)
    assert resp.status == 404
    await assert_nothing_kept(web_only)


async def test_unknown_kind_stored_and_acknowledged(gateway: Harness) -> None:
    xml = (FIXTURES / "wechat" / "shortvideo.xml").read_text().replace("fromUser", "oVideo")
    xml = xml.replace("1357290913", str(int(time.time())))
    resp = await gateway.post_xml(xml, PLAIN_ACCOUNT)
    assert resp.status == 200 and await resp.text() == "success"
    store = gateway.runtime.store
    for _ in range(100):
        doc = await store.messages.find_one({"sender": "oVideo", "direction": "in"})
        if doc:
            break
        import asyncio

        await asyncio.sleep(0.05)
    assert doc is not None and doc["kind"] == "unknown" and "shortvideo" in doc["raw"]
