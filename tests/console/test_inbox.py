"""The agent inbox through the real webhook: queue, live events, claim, reply, hand back."""

from __future__ import annotations

import asyncio
import time

import pytest

from admin.roles import Role
from channels.wechat.simulator import message_xml
from tests.console.conftest import ConsoleRig, stored
from tests.harness import next_msg_id
from tests.console.live import EventReader

CID = "wechat:demo:oInbox"


async def ask_for_a_person(rig: ConsoleRig, sender: str = "oInbox") -> None:
    resp = await rig.harness.say(sender, "转人工")
    assert resp.status == 200
    for _ in range(200):
        if any(w["conversation"] == f"wechat:demo:{sender}" for w in await rig.harness.runtime.handoff.waiting()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the conversation never reached the queue")


async def test_queue_appears_live_then_claim_reply_and_hand_back(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await rig.console.hub.ready.wait()
    inbox = await EventReader.open(alice.http, rig.base + "/admin/events")
    await ask_for_a_person(rig)
    event = await inbox.next(where=lambda e: e["owner"] == "queue")
    assert event["conversation"] == CID and event["waiting"]["reason"] == "customer asked for a human"
    assert event["messages"] == []  # the inbox stream carries no customer text
    page = await (await alice.get("/admin/inbox")).text()
    assert CID in page and "客户要求转人工" in page  # alice reads Chinese (admin.reasons)
    assert event["waiting"]["reason_words"] == {"zh": "客户要求转人工", "en": "Customer asked for a person"}

    resp = await alice.post(f"/admin/conversations/{CID}/claim")
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/conversations/{CID}"
    claimed = await inbox.next(where=lambda e: e["type"] == "claimed")
    assert claimed["owner"] == "agent:alice"
    inbox.close()

    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "转人工" in page and "reply-form" in page
    conversation = await EventReader.open(alice.http, rig.base + f"/admin/events?conversation={CID}")
    start = time.monotonic()
    await rig.harness.say("oInbox", "我的空调不制冷")
    new = await conversation.next(where=lambda e: e["type"] == "message")
    assert [m["text"] for m in new["messages"]] == ["我的空调不制冷"]
    assert time.monotonic() - start < 1.0  # webhook -> worker -> Redis -> this page

    before = len(rig.harness.fake.sent_to("oInbox"))
    resp = await alice.post(f"/admin/conversations/{CID}/reply", {"text": "您好，我是客服小李"})
    assert resp.status == 303
    mine = await conversation.next(where=lambda e: e["type"] == "message" and e["messages"] and e["messages"][0]["direction"] == "out")
    assert mine["messages"][0]["text"] == "您好，我是客服小李"
    sent = await rig.harness.fake.wait_sent(before + 1)
    assert sent[-1]["text"]["content"] == "您好，我是客服小李"

    resp = await alice.post(f"/admin/conversations/{CID}/handback")
    assert resp.status == 303
    state = await rig.harness.runtime.states.get(CID)
    assert state is not None and state.owner == "bot"
    conversation.close()
    actions = [e.action for e in await rig.console.audit.recent(target=CID)]
    assert actions == ["conversation.handback", "conversation.reply", "conversation.claim"]


async def test_two_agents_claim_at_once_exactly_one_wins(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    bob = await rig.person("bob")
    await ask_for_a_person(rig)
    results = await asyncio.gather(
        alice.post(f"/admin/conversations/{CID}/claim", headers={"Referer": rig.base + "/admin/inbox"}),
        bob.post(f"/admin/conversations/{CID}/claim", headers={"Referer": rig.base + "/admin/inbox"}),
    )
    state = await rig.harness.runtime.states.get(CID)
    assert state is not None and state.agent in ("alice", "bob")
    winner, loser = (alice, bob) if state.agent == "alice" else (bob, alice)
    by_who = dict(zip((alice, bob), results))
    assert by_who[winner].headers["Location"] == f"/admin/conversations/{CID}"
    assert by_who[loser].headers["Location"] == "/admin/inbox"
    page = await (await loser.get("/admin/inbox")).text()
    assert f"该会话已由 {state.agent} 接入" in page  # the loser is told who has it
    await rig.harness.fake.wait_sent(2)  # the queue notice, then one "agent joined"
    await asyncio.sleep(0.3)
    texts = [s["text"]["content"] for s in rig.harness.fake.sent_to("oInbox")]
    loser_name = "bob" if state.agent == "alice" else "alice"
    assert sum(state.agent in t for t in texts) == 1 and not any(loser_name in t for t in texts)


async def test_customer_html_is_shown_as_text(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    conversation = await EventReader.open(alice.http, rig.base + f"/admin/events?conversation={CID}")
    poison = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await rig.harness.say("oInbox", poison)
    event = await conversation.next(where=lambda e: e["type"] == "message")
    assert event["messages"][0]["text"] == poison  # data for textContent, never markup
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    conversation.close()


async def test_without_csrf_token_nothing_changes(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    resp = await alice.post(f"/admin/conversations/{CID}/claim", csrf=False)
    assert resp.status == 403
    resp = await alice.post(f"/admin/conversations/{CID}/claim", {"_csrf": "forged"}, csrf=False)
    assert resp.status == 403
    state = await rig.harness.runtime.states.get(CID)
    assert state is not None and state.owner == "queue"
    await alice.post(f"/admin/conversations/{CID}/claim")
    sends = len(rig.harness.fake.sent_to("oInbox"))
    resp = await alice.post(f"/admin/conversations/{CID}/reply", {"text": "should never arrive"}, csrf=False)
    assert resp.status == 403
    await asyncio.sleep(0.5)
    assert all("should never arrive" not in s["text"]["content"] for s in rig.harness.fake.sent_to("oInbox")[sends:])
    assert await rig.console.audit.recent(target=CID) != [] and all(e.action != "conversation.reply" for e in await rig.console.audit.recent(target=CID))


async def test_marketers_never_see_conversation_contents(rig: ConsoleRig) -> None:
    await ask_for_a_person(rig)
    mia = await rig.person("mia", Role.MARKETER)
    msg = await rig.harness.runtime.store.last_inbound(CID)
    assert msg is not None
    for path in ("/admin/inbox", f"/admin/conversations/{CID}", "/admin/events", f"/admin/events?conversation={CID}",
                 f"/admin/search?text=%E8%BD%AC", f"/admin/messages/{msg['_id']}/media", "/admin/outbox"):
        resp = await mia.get(path)
        assert resp.status == 403, path
        assert "转人工" not in await resp.text()
    assert (await mia.get("/admin/")).headers["Location"] == "/admin/marketing/customers"


async def test_transfer_notes_and_close(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    bob = await rig.person("bob")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    await alice.post(f"/admin/conversations/{CID}/note", {"text": "客户很着急 <b>VIP</b>"})
    resp = await alice.post(f"/admin/conversations/{CID}/transfer", {"to": "bob"})
    assert resp.status == 303
    state = await rig.harness.runtime.states.get(CID)
    assert state is not None and state.agent == "bob"
    page = await (await bob.get(f"/admin/conversations/{CID}")).text()
    assert "客户很着急 &lt;b&gt;VIP&lt;/b&gt;" in page
    before = len(rig.harness.fake.sent_to("oInbox"))
    assert (await bob.post(f"/admin/conversations/{CID}/close")).status == 303
    sent = await rig.harness.fake.wait_sent(before + 1)
    assert "感谢您的咨询" in sent[-1]["text"]["content"]
    notes = await rig.console.notes.of(CID)
    assert [n.author for n in notes] == ["alice"]
    assert all("客户很着急" not in s["text"]["content"] for s in rig.harness.fake.sent_to("oInbox"))  # notes never sent


async def test_images_and_voice_are_served_by_what_the_bytes_are(rig: ConsoleRig) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    media_id = rig.harness.fake.add_media(png)
    xml = message_xml("gh_kefu_demo", "oInbox", "image", {"PicUrl": "http://example.invalid/p.jpg", "MediaId": media_id, "MsgId": next_msg_id()})
    assert (await rig.harness.post_xml(xml)).status == 200
    doc = await stored(rig, {"conversation": CID, "kind": "image"})
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert f'src="/admin/messages/{doc["_id"].replace(":", "%3A")}/media"' in page
    resp = await alice.get(f"/admin/messages/{doc['_id']}/media")
    assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == png
    # Bytes that are no known picture or sound are offered only as a download type.
    junk = rig.harness.fake.add_media(b"<html><script>alert(1)</script></html>")
    xml = message_xml("gh_kefu_demo", "oInbox", "image", {"PicUrl": "", "MediaId": junk, "MsgId": next_msg_id()})
    assert (await rig.harness.post_xml(xml)).status == 200
    doc = await stored(rig, {"conversation": CID, "kind": "image", "media.media_id": junk})
    resp = await alice.get(f"/admin/messages/{doc['_id']}/media")
    assert resp.content_type == "application/octet-stream" and resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_junk_gets_a_clear_refusal_one_log_line_and_changes_nothing(rig: ConsoleRig, caplog: pytest.LogCaptureFixture) -> None:
    alice = await rig.person("alice")
    await ask_for_a_person(rig)
    await alice.post(f"/admin/conversations/{CID}/claim")
    sends = len(rig.harness.fake.sent_to("oInbox"))
    url = rig.base + f"/admin/conversations/{CID}"
    junk = [
        (b"_csrf=" + alice.csrf.encode() + b"&text=%ED%A0%80%FF", "application/x-www-form-urlencoded"),  # not UTF-8
        (b"_csrf=" + alice.csrf.encode() + b"&text=" + b"x" * 5000, "application/x-www-form-urlencoded"),
        (b"_csrf=" + alice.csrf.encode() + b"&text=a%00b", "application/x-www-form-urlencoded"),
        (b"--zz\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nunterminated", "multipart/form-data; boundary=zz"),
    ]
    caplog.clear()
    for body, content_type in junk:
        for action in ("note", "reply"):
            resp = await alice.http.post(f"{url}/{action}", data=body, headers={"Content-Type": content_type, "Referer": url}, allow_redirects=False)
            assert resp.status in (303, 400, 403), (action, body[:40], resp.status)
    assert all(r.exc_info is None for r in caplog.records)  # one line each, no traceback
    assert await rig.console.notes.of(CID) == []
    await asyncio.sleep(0.3)
    assert len(rig.harness.fake.sent_to("oInbox")) == sends
    resp = await alice.http.post(f"{url}/note", data=junk[0][0], headers={"Content-Type": junk[0][1], "Referer": url}, allow_redirects=False)
    page = await (await alice.get(f"/admin/conversations/{CID}")).text()
    assert "the form could not be read (UnicodeDecodeError)" in page  # told why, on the page
