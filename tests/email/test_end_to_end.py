"""Mail in over a real IMAP server (dovecot) -> threaded reply out over real SMTP (aiosmtpd)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from channels.email.simulator import SimulateOptions, customer_mail, simulate
from tests.email.conftest import ADDRESS, CUSTOMER, MailHarness


async def wait_for(predicate, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def replies(h: MailHarness, count: int) -> list[EmailMessage]:
    return await asyncio.to_thread(h.sink.wait, count)  # type: ignore[arg-type]


QUOTED = "我的打印机 XK-8800 卡纸了\n\n在 2026年3月3日 10:00，\"客服\"<support@kefu.test> 写道：\n> 旧的内容\n"


async def test_mail_in_threaded_reply_out(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    mid, raw = customer_mail(f"Li Lei <{CUSTOMER}>", ADDRESS, QUOTED, subject="报修", references=("root@kefu.test",))
    h.dovecot.deliver("support", raw)
    sent = await replies(h, 1)
    assert len(sent) == 1
    reply = sent[0]
    assert reply["To"] == CUSTOMER and ADDRESS in reply["From"]
    assert reply["Subject"] == "Re: 报修"
    assert reply["In-Reply-To"] == f"<{mid}>"
    assert reply["References"] == f"<root@kefu.test> <{mid}>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply.get_content_type() == "multipart/alternative"
    plain = reply.get_body(preferencelist=("plain",))
    html = reply.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert "卡纸了" in plain.get_content() and "旧的内容" not in plain.get_content()
    assert "<p" in html.get_content()
    # Stored: the stripped text for NLU, the full body in raw.
    doc = await h.runtime.store.messages.find_one({"direction": "in", "channel": "email"})
    assert doc is not None and doc["text"] == "我的打印机 XK-8800 卡纸了" and "旧的内容" in doc["raw"]
    assert doc["sender"] == CUSTOMER


async def test_customer_reply_to_our_reply_stays_in_conversation(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    first_id, raw = customer_mail(CUSTOMER, ADDRESS, "first question")
    h.dovecot.deliver("support", raw)
    ours = (await replies(h, 1))[0]
    our_id = str(ours["Message-ID"]).strip("<>")
    _, raw2 = customer_mail(CUSTOMER, ADDRESS, "follow-up", in_reply_to=our_id, references=(first_id, our_id), subject="Re: x")
    h.dovecot.deliver("support", raw2)
    second = (await replies(h, 2))[1]
    assert second["In-Reply-To"] != ours["In-Reply-To"]
    docs = [d async for d in h.runtime.store.messages.find({"direction": "in", "channel": "email"})]
    assert len(docs) == 2 and docs[0]["conversation"] == docs[1]["conversation"]
    # A new mail without references is a new conversation.
    _, raw3 = customer_mail(CUSTOMER, ADDRESS, "unrelated")
    h.dovecot.deliver("support", raw3)
    await replies(h, 3)
    convs = {d["conversation"] async for d in h.runtime.store.messages.find({"direction": "in", "channel": "email"})}
    assert len(convs) == 2


async def test_auto_replies_and_bounces_are_recorded_never_answered(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    autos = [
        customer_mail(CUSTOMER, ADDRESS, "I am on leave", headers={"Auto-Submitted": "auto-replied"}),
        customer_mail("MAILER-DAEMON@mx.kefu.test", ADDRESS, "Delivery failed"),
        customer_mail("news@shop.test", ADDRESS, "SALE", headers={"Precedence": "bulk"}),
        customer_mail(CUSTOMER, ADDRESS, "Out of office", headers={"X-Autoreply": "yes"}),
    ]
    for _, raw in autos:
        h.dovecot.deliver("support", raw)
    _, person = customer_mail(CUSTOMER, ADDRESS, "a real question")
    h.dovecot.deliver("support", person)
    sent = await replies(h, 1)
    await asyncio.sleep(1.0)  # room for a wrong answer to an automatic mail to show up
    assert len(h.sink.messages) == 1 and "a real question" in str(sent[0].get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    store = h.runtime.store
    await wait_for(lambda: _count(store, {"direction": "in", "event": "auto_reply"}, 4))


async def _count(store, query, n) -> bool:  # type: ignore[no-untyped-def]
    return bool(await store.messages.count_documents(query) >= n)


async def test_malformed_mail_is_quarantined_and_intake_goes_on(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    h.dovecot.deliver("support", b"Subject: nobody sent this\r\nMessage-ID: <bad1@x>\r\n\r\nno From header\r\n")
    _, good = customer_mail(CUSTOMER, ADDRESS, "after the bad one")
    h.dovecot.deliver("support", good)
    await replies(h, 1)
    dead = await h.runtime.store.dead_letters.find_one({"kind": "email"})
    assert dead is not None and "From" in dead["reason"] and "nobody sent this" in dead["payload"]


async def test_attachments_stored_audio_becomes_voice(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    audio = b"#!AMR\n" + bytes(range(256)) * 4
    _, raw = customer_mail(
        CUSTOMER, ADDRESS, "see attached",
        attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 fake"), ("note.amr", "audio/amr", audio)),
    )
    h.dovecot.deliver("support", raw)
    await replies(h, 1)
    doc = await h.runtime.store.messages.find_one({"direction": "in", "channel": "email"})
    assert doc is not None and doc["kind"] == "voice" and doc["media"]["format"] == "amr"
    from bot.messages import MediaRef

    assert await h.channel.fetch_media(MediaRef(media_id=doc["media"]["media_id"])) == audio
    files = await h.runtime.store.db["email_attachments.files"].count_documents({})
    assert files == 2


async def test_idle_picks_up_new_mail_without_polling(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    h.channel.intake.poll_s = 60.0  # only IDLE can be this quick
    await wait_for(lambda: _cursor_set(h))
    await asyncio.sleep(0.3)  # the session is in IDLE now
    _, raw = customer_mail(CUSTOMER, ADDRESS, "arrives while idling")
    h.dovecot.deliver("support", raw)
    await asyncio.wait_for(replies(h, 1), 10)


async def _cursor_set(h: MailHarness) -> bool:
    return await h.channel.intake.cursor.get() is not None


async def test_simulator_round_trip(mail_gateway: MailHarness) -> None:
    h = mail_gateway
    out = await simulate(h.client.session, "", h.account, SimulateOptions(sender=CUSTOMER, text="hello from simulate", wait_s=15))
    assert len(out) == 1 and "hello from simulate" in out[0]
