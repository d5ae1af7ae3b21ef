"""The knowledge JSON API on the real gateway: scoped keys, CRUD with versions, errors."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from knowledge.missed import MissedTurn
from knowledge.service import KNOWLEDGE
from tests.harness import Harness, gateway_config

READ = {"Authorization": "Bearer kb-reader"}
WRITE = {"X-API-Key": "kb-writer"}
ENTRY = {
    "id": "invoice", "title": "开发票 / Invoices", "questions": ["发票怎么开？", "How do I get an invoice?"],
    "answers": {"zh": {"short": "在订单里申请发票。", "full": "在“我的订单”里点“申请发票”，三个工作日内发到邮箱。"},
                "en": "Request it under My orders."},
    "tags": ["invoice"], "owner": "财务部",
}


@pytest.fixture
async def api(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str) -> Harness:
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")))
    cfg["knowledge"] = {"enabled": True}  # without NLU: the API alone
    cfg["api"] = {"keys": [{"key": "kb-reader", "scopes": ["knowledge:read"]},
                           {"key": "kb-writer", "scopes": ["knowledge:read", "knowledge:write"]}]}
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return Harness(client=client, fake=fake)


async def test_create_read_change_delete_with_versions(api: Harness) -> None:
    c = api.client
    resp = await c.post("/api/kb/entries", json=ENTRY, headers=WRITE)
    assert resp.status == 201 and (await resp.json())["version"] == 1
    again = await c.post("/api/kb/entries", json=ENTRY, headers=WRITE)
    assert again.status == 409 and (await again.json())["error"]["code"] == "version_conflict"
    got = await (await c.get("/api/kb/entries/invoice", headers=READ)).json()
    assert got["answers"]["en"] == {"short": "Request it under My orders.", "full": "Request it under My orders."}
    changed = await c.put("/api/kb/entries/invoice", json={**ENTRY, "owner": "客服中心", "version": 1}, headers=WRITE)
    assert changed.status == 200 and (await changed.json())["version"] == 2
    stale = await c.put("/api/kb/entries/invoice", json={**ENTRY, "owner": "别的部门", "version": 1}, headers=WRITE)
    assert stale.status == 409
    assert (await (await c.get("/api/kb/entries/invoice", headers=READ)).json())["owner"] == "客服中心"
    versions = (await (await c.get("/api/kb/entries/invoice/versions", headers=READ)).json())["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    listed = await (await c.get("/api/kb/entries?tag=invoice", headers=READ)).json()
    assert listed["total"] == 1 and listed["entries"][0]["id"] == "invoice"
    found = await (await c.post("/api/kb/search", json={"q": "怎么开发票"}, headers=READ)).json()
    assert found["answer"] == "invoice"
    assert (await c.delete("/api/kb/entries/invoice?version=2", headers=WRITE)).status == 200
    assert (await c.get("/api/kb/entries/invoice", headers=READ)).status == 404


async def test_keys_and_scopes(api: Harness) -> None:
    c = api.client
    assert (await c.get("/api/kb/entries")).status == 401
    assert (await c.get("/api/kb/entries", headers={"X-API-Key": "wrong"})).status == 401
    refused = await c.post("/api/kb/entries", json=ENTRY, headers=READ)
    assert refused.status == 403
    assert (await (await c.get("/api/kb/entries", headers=READ)).json())["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"id": "x", "questions": ["q"], "answers": {"zh": "\\ud800"}}', "answers.zh.short"),
        (b'{"id": "x", "questions": ["q"], "answers": {"de": "Antwort"}}', "answers.de"),
    ],
)
async def test_bad_bodies_get_a_clear_error_and_change_nothing(api: Harness, body: bytes, field: str) -> None:
    c = api.client
    resp = await c.post("/api/kb/entries", data=body, headers={**WRITE, "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith(field)
    assert (await (await c.get("/api/kb/entries", headers=READ)).json())["total"] == 0


async def test_missed_turns_come_grouped_for_the_trainer(api: Harness) -> None:
    missed = api.client.app[KNOWLEDGE].missed
    for i, text in enumerate(["发票怎么开", "今天天气怎么样", "怎么开发票？", "发票怎么开"]):
        await missed.add(MissedTurn(reason="out_of_scope", text=text, language="zh", conversation=f"c{i}"))
    resp = await api.client.get("/api/kb/missed/groups", headers=READ)
    assert resp.status == 200
    groups = (await resp.json())["groups"]
    assert [(g["example"], g["size"]) for g in groups] == [("发票怎么开", 3), ("今天天气怎么样", 1)]
    assert groups[0]["reasons"] == {"out_of_scope": 3}
    assert (await api.client.get("/api/kb/missed/groups")).status == 401


async def test_a_label_from_the_api_is_approved_as_made_and_in_the_trail(api: Harness) -> None:
    c = api.client
    assert (await c.post("/api/kb/entries", json=ENTRY, headers=WRITE)).status == 201
    kb = api.client.app[KNOWLEDGE]
    await kb.missed.add(MissedTurn(reason="out_of_scope", text="能开专票吗", language="zh", conversation="wechat:demo:o1"))
    resp = await c.post("/api/kb/labels", json={"kind": "entry", "texts": ["能开专票吗"], "entry": "invoice"}, headers=WRITE)
    body = await resp.json()
    assert resp.status == 201 and body["status"] == "approved" and body["turns_marked"] == 1
    assert body["entry_saved"] == {"id": "invoice", "version": 2, "questions": 3, "added": ["能开专票吗"]}
    trail = await kb.trail.of([body["id"]])
    assert [(e.by, e.action, e.after) for e in trail[body["id"]]] == [("api", "labelled", "entry invoice · approved")]
    none = await c.post("/api/kb/labels", json={"kind": "no_answer", "texts": ["你们老板是谁"]}, headers=WRITE)
    assert none.status == 201 and (await none.json())["kind"] == "no_answer"
    bad = await c.post("/api/kb/labels", json={"kind": "entry", "texts": ["x"], "entry": "invoice", "new_entry": {"title": "t", "questions": ["x"], "answers": {"zh": "a"}}}, headers=WRITE)
    assert bad.status == 400 and "exists" in (await bad.json())["error"]["message"]
    listed = (await (await c.get("/api/kb/labels", headers=READ)).json())["labels"]
    assert [x["kind"] for x in listed] == ["entry", "no_answer"]
