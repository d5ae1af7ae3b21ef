"""Parsing, loop detection, quote stripping and reply composition, no servers needed."""

from __future__ import annotations

import email
import email.policy

import pytest

from channels.email.compose import MailTemplates, build_reply, message_id_for, reply_subject
from channels.email.parser import MalformedMail, html_to_text, parse_mail, strip_quoted
from channels.email.simulator import customer_mail

GMAIL = """My printer still jams on page 2.

Thanks,
Li Lei

On Tue, 3 Mar 2026 at 10:00, Kefu Support <support@kefu.test> wrote:
> We received your message.
> Please tell us the model.
"""
OUTLOOK = """请派人上门维修。

________________________________
发件人: Kefu 客服 <support@kefu.test>
发送时间: 2026年3月3日 10:00
主题: Re: 报修
"""
QQ = """型号是 XK-8800

在 2026年3月3日 10:00，"Kefu 客服"<support@kefu.test> 写道：
> 请提供型号
"""
SIGNED = """Can you call me tomorrow?
-- 
Wang Fang | ACME Ltd | +86 10 1234 5678
"""
IPHONE = """好的，谢谢

发自我的iPhone

------------------ 原始邮件 ------------------
"""


@pytest.mark.parametrize(
    "body,expected",
    [
        (GMAIL, "My printer still jams on page 2.\n\nThanks,\nLi Lei"),
        (OUTLOOK, "请派人上门维修。"),
        (QQ, "型号是 XK-8800"),
        (SIGNED, "Can you call me tomorrow?"),
        (IPHONE, "好的，谢谢"),
        ("> only a quote\nnew text", "new text"),
    ],
)
def test_strip_quoted(body: str, expected: str) -> None:
    assert strip_quoted(body) == expected


def test_html_only_mail_becomes_text() -> None:
    assert html_to_text("<html><head><style>p{}</style></head><body><p>Hello</p><div>World&amp;co</div></body></html>") == "Hello\nWorld&co"


def test_parse_threading_headers() -> None:
    _, raw = customer_mail("Li Lei <LiLei@Example.COM>", "support@kefu.test", "hi", message_id="m2@example.com", in_reply_to="m1@kefu.test", references=("m0@example.com", "m1@kefu.test"))
    mail = parse_mail(raw)
    assert mail.message_id == "m2@example.com" and mail.in_reply_to == "m1@kefu.test"
    assert mail.references == ("m0@example.com", "m1@kefu.test")
    assert mail.sender == "lilei@example.com" and mail.sender_name == "Li Lei"
    assert mail.auto_reason == ""


@pytest.mark.parametrize(
    "headers,sender,reason",
    [
        ({"Auto-Submitted": "auto-replied"}, "a@x.com", "auto-submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated"}, "a@x.com", "auto-submitted: auto-generated"),
        ({"Precedence": "bulk"}, "a@x.com", "precedence: bulk"),
        ({"Precedence": "junk"}, "a@x.com", "precedence: junk"),
        ({"Precedence": "list"}, "a@x.com", "precedence: list"),
        ({"X-Autoreply": "yes"}, "a@x.com", "x-autoreply"),
        ({}, "MAILER-DAEMON@mx.example.com", "bounce"),
        ({}, "postmaster@example.com", "bounce"),
        ({"List-Id": "<news.example.com>"}, "a@x.com", "mailing list"),
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str], sender: str, reason: str) -> None:
    _, raw = customer_mail(sender, "support@kefu.test", "I am out of office", headers=headers)
    assert parse_mail(raw).auto_reason == reason


def test_auto_submitted_no_is_a_person() -> None:
    _, raw = customer_mail("a@x.com", "support@kefu.test", "hi", headers={"Auto-Submitted": "no"})
    assert parse_mail(raw).auto_reason == ""


def test_delivery_report_is_recognised() -> None:
    raw = (
        b"From: Mail Delivery System <bounces@mx.example.com>\r\nTo: support@kefu.test\r\nSubject: Undelivered\r\n"
        b"Message-ID: <dsn1@mx>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--XX\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--XX--\r\n"
    )
    assert parse_mail(raw).auto_reason == "delivery report"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"Subject: no sender\r\n\r\nbody", b"From: not an address\r\n\r\nx"])
def test_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMail):
        parse_mail(raw)


def test_too_large() -> None:
    _, raw = customer_mail("a@x.com", "s@kefu.test", "x" * 2000)
    with pytest.raises(MalformedMail):
        parse_mail(raw, max_bytes=1000)


def test_bad_charset_does_not_crash() -> None:
    raw = b"From: a@x.com\r\nMessage-ID: <c@x>\r\nContent-Type: text/plain; charset=x-unknown-9\r\n\r\nhello \xff\r\n"
    assert "hello" in parse_mail(raw).text


def test_reply_headers_and_parts() -> None:
    templates = MailTemplates()
    plain, html = templates.render("第一段 <b>\n\nsecond", subject="Re: x", signature="Kefu")
    assert "<b>" in plain and "&lt;b&gt;" in html and "<b>" not in html.replace("<body", "")
    msg = build_reply(
        from_address="support@kefu.test", from_name="Kefu 客服", to="a@x.com", subject=reply_subject("报修", "Kefu"),
        text=plain, html=html, message_id=message_id_for("k1", "kefu.test"), in_reply_to="m2@x", references=("m0@x", "m1@kefu.test"),
    )
    parsed = email.message_from_bytes(bytes(msg), policy=email.policy.default)
    assert parsed["Subject"] == "Re: 报修"
    assert parsed["In-Reply-To"] == "<m2@x>" and parsed["References"] == "<m0@x> <m1@kefu.test> <m2@x>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed.get_content_type() == "multipart/alternative"
    assert message_id_for("k1", "kefu.test") == message_id_for("k1", "kefu.test") != message_id_for("k2", "kefu.test")
    assert reply_subject("RE: 报修", "d") == "RE: 报修" and reply_subject("回复：报修", "d") == "回复：报修" and reply_subject("", "Kefu") == "Re: Kefu"
