"""My data, the signed PDF summary: named, confirmed, signed, mailed through the real SMTP
path of a configured email account (aiosmtpd on loopback, dovecot for its IMAP side).

The mail's PDF is read back with poppler's pdftotext; its signature is checked with our
code and with OpenSSL the way the mail tells a recipient to, and a PDF altered by one
word fails both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import subprocess
from collections.abc import AsyncIterator
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from channels.wechat.fake_api import FakeWeChatAPI
from portal.signing import fingerprint, verify
from tests.console.test_browser import browser  # noqa: F401  (the chromium fixture)
from tests.email.conftest import dovecot, email_account, sink  # noqa: F401  (real IMAP and SMTP servers)
from tests.email.servers import Dovecot, SmtpSink
from tests.harness import gateway_config
from tests.portal.conftest import PortalRig, make_rig
from tests.portal.test_browser import PHONE, SHOTS, shot

AUDITOR = "auditor@example.cn"


@pytest.fixture
async def mail_rig(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    dovecot: Dovecot, sink: SmtpSink,  # noqa: F811
) -> AsyncIterator[PortalRig]:
    channels = gateway_config(redis_url, mongo_url, str(fake_wechat[1].make_url("")))["channels"]
    r = await make_rig(
        aiohttp_client, fake_wechat, redis_url, mongo_url,
        channels={**channels, "email": [email_account(dovecot, sink)]},
        portal={"wechat_web_auth": ["demo"], "wechat_authorize_url": str(fake_wechat[1].make_url("")), "summary_per_hour": 2},
    )
    yield r
    for http in r.sessions:
        await http.close()


def attachments(msg: Message) -> dict[str, bytes]:
    assert isinstance(msg, EmailMessage)
    out: dict[str, bytes] = {}
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_filename())] = payload
    return out


def pdf_text(pdf: bytes, tmp: Path) -> str:
    path = tmp / "summary.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True, text=True).stdout


def openssl_verifies(pdf: bytes, signature: bytes, pem: bytes, tmp: Path) -> bool:
    """The check the mail tells a recipient to run."""
    for name, body in (("summary.pdf", pdf), ("summary.pdf.sig", signature), ("signing-key.pem", pem)):
        (tmp / name).write_bytes(body)
    done = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin", "-in", "summary.pdf", "-sigfile", "summary.pdf.sig"],
        cwd=tmp, capture_output=True, text=True,
    )
    return done.returncode == 0 and "Signature Verified Successfully" in done.stdout


async def ask_summary(who: Any, address: str) -> str:
    """The first step: the address named; returns the confirmation id."""
    resp = await who.post("/portal/data/summary", {"address": address})
    assert resp.status == 303, await resp.text()
    found = re.search(r"summary=([A-Za-z0-9_\-]+)", resp.headers["Location"])
    assert found, resp.headers["Location"]
    return found.group(1)


async def test_the_summary_goes_only_to_the_confirmed_address_signed(mail_rig: PortalRig, sink: SmtpSink, tmp_path: Path) -> None:  # noqa: F811
    owner, customer = await mail_rig.customer("o-summary")
    await mail_rig.deps.rules.add(customer, "renewal", "amount_over", "1000000", "cto@example.cn", created_by=customer)
    assert (await owner.post("/portal/people", {"contact": "cfo@example.cn", "module.contracts": "1"})).status == 303

    pending = await ask_summary(owner, "Auditor@Example.CN")
    page = await owner.page(f"/portal/data?summary={pending}")
    assert f"确认把摘要发到 {AUDITOR}" in page
    assert sink.messages == []  # nothing leaves before the customer confirms
    # The confirmation without the session's CSRF token: refused, nothing sent.
    assert (await owner.post("/portal/data/summary/send", {"id": pending}, csrf=False)).status == 403
    sent = await owner.post("/portal/data/summary/send", {"id": pending})
    assert sent.status == 303 and sent.headers["Location"] == "/portal/data#summary"
    assert f"摘要已发送到 {AUDITOR}" in await owner.page("/portal/data")
    [msg] = await asyncio.to_thread(sink.wait, 1)
    assert msg["To"] == AUDITOR and sink.envelopes[0][1] == [AUDITOR]
    files = attachments(msg)
    assert sorted(files) == ["signing-key.pem", "summary.pdf", "summary.pdf.sig"]
    pdf, signature, pem = files["summary.pdf"], files["summary.pdf.sig"], files["signing-key.pem"]

    # What the PDF says, in the customer's language.
    words = await asyncio.to_thread(pdf_text, pdf, tmp_path)
    for expected in ("我的数据摘要", "我们保存的数据", "基本资料", "维修进度", "即时", "cto@example.cn", "cfo@example.cn: 我的合同", "账户持有人：全部模块", fingerprint(pem)):
        assert expected in words, expected

    # The published key is the one that signed; a PDF altered by one word fails.
    published = await mail_rig.visitor().get("/portal/signing-key.pem")
    assert published.status == 200 and await published.read() == pem
    assert fingerprint(pem) in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert verify(pdf, signature, pem) and await asyncio.to_thread(openssl_verifies, pdf, signature, pem, tmp_path)
    tampered = pdf.replace(b"/Creator", b"/Creatop", 1)
    assert tampered != pdf
    assert not verify(tampered, signature, pem) and not await asyncio.to_thread(openssl_verifies, tampered, signature, pem, tmp_path)
    assert not verify(pdf, signature[:-1] + bytes([signature[-1] ^ 1]), pem)

    # Audited with the address and the PDF's digest.
    [entry] = [a for a in await mail_rig.portal.audit.recent(customer) if a["action"] == "data.summary"]
    assert entry["target"] == AUDITOR and entry["after"]["sha256"] == hashlib.sha256(pdf).hexdigest()

    # A confirmation is used once.
    again = await owner.post("/portal/data/summary/send", {"id": pending}, headers={"Referer": mail_rig.base + "/portal/data"})
    assert again.status == 303 and "that confirmation has expired" in await owner.page("/portal/data")
    assert len(sink.messages) == 1


async def test_summaries_are_limited_per_hour_and_refuse_junk(mail_rig: PortalRig, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    owner, customer = await mail_rig.customer("o-summary-limit")
    back = {"Referer": mail_rig.base + "/portal/data"}
    for junk in ("not an address", "+86 138 0000 0000", ""):
        resp = await owner.post("/portal/data/summary", {"address": junk}, headers=back)
        assert resp.status == 303 and "summary=" not in resp.headers["Location"], junk
    for _ in range(2):  # summary_per_hour: 2
        pending = await ask_summary(owner, AUDITOR)
        assert (await owner.post("/portal/data/summary/send", {"id": pending})).status == 303
    await asyncio.to_thread(sink.wait, 2)
    pending = await ask_summary(owner, AUDITOR)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="portal")
    refused = await owner.post("/portal/data/summary/send", {"id": pending}, headers=back)
    assert refused.status == 303
    assert "at most 2 summaries an hour" in await owner.page("/portal/data")
    assert len(sink.messages) == 2
    assert [r.getMessage() for r in caplog.records if r.name.startswith("portal") and "summar" in r.getMessage()] == [
        "portal: summary refused, over 2 an hour", "portal: POST data_summary_send refused: too_many_summaries (429)",
    ]
    assert AUDITOR not in caplog.text and customer not in caplog.text
    sent = [a for a in await mail_rig.portal.audit.recent(customer) if a["action"] == "data.summary"]
    assert len(sent) == 2


async def test_one_customers_confirmation_is_not_anothers(mail_rig: PortalRig, sink: SmtpSink) -> None:  # noqa: F811
    alice, _ = await mail_rig.customer("o-summary-alice")
    bob, _ = await mail_rig.customer("o-summary-bob")
    bobs = await ask_summary(bob, "bob-auditor@example.cn")
    assert "bob-auditor" not in await alice.page(f"/portal/data?summary={bobs}")
    assert (await alice.post("/portal/data/summary/send", {"id": bobs}, headers={"Referer": mail_rig.base + "/portal/data"})).status == 303
    assert sink.messages == []
    assert (await bob.post("/portal/data/summary/send", {"id": bobs})).status == 303  # still Bob's to confirm
    [msg] = await asyncio.to_thread(sink.wait, 1)
    assert msg["To"] == "bob-auditor@example.cn"


async def test_without_an_email_account_the_page_says_so(rig: PortalRig) -> None:
    owner, customer = await rig.customer("o-summary-nomail")
    assert "本系统未配置发信邮箱" in await owner.page("/portal/data")
    pending = await ask_summary(owner, AUDITOR)
    resp = await owner.post("/portal/data/summary/send", {"id": pending}, headers={"Referer": rig.base + "/portal/data"})
    assert resp.status == 303 and "no email account is configured" in await owner.page("/portal/data")
    assert [a for a in await rig.portal.audit.recent(customer) if a["action"] == "data.summary"] == []


@pytest.mark.no_blockbuster  # Playwright's driver pipe is not our code's I/O
async def test_a_customer_sends_the_summary_from_their_phone(browser: Any, mail_rig: PortalRig, sink: SmtpSink, tmp_path: Path) -> None:  # noqa: F811
    _, link = await mail_rig.ask_link("o-summary-phone")
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.goto(mail_rig.base + link)
    await page.click("#link-continue")
    await page.wait_for_url("**/portal/")
    await page.click('nav.tabs a:has-text("我的数据")')
    await page.fill('input[name="address"]', AUDITOR)
    await page.click("#summary-prepare")
    await page.wait_for_selector("#summary-confirm")
    assert AUDITOR in await page.inner_text("#summary-confirm")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#summary").screenshot(path=str(SHOTS / "09-summary-confirm.png"))
    await page.click("#summary-send")
    await page.wait_for_selector(".flash")
    assert AUDITOR in await page.inner_text(".flash")
    await shot(page, "10-summary-sent")
    [msg] = await asyncio.to_thread(sink.wait, 1)
    files = attachments(msg)
    assert "我的数据摘要" in await asyncio.to_thread(pdf_text, files["summary.pdf"], tmp_path)
    assert verify(files["summary.pdf"], files["summary.pdf.sig"], files["signing-key.pem"])
    # What the recipient opens: the first page, drawn by poppler.
    await asyncio.to_thread(
        subprocess.run, ["pdftoppm", "-r", "70", "-png", "-singlefile", "-f", "1", "-l", "1", str(tmp_path / "summary.pdf"), str(SHOTS / "11-summary-pdf")],
        check=True,
    )
    await context.close()
