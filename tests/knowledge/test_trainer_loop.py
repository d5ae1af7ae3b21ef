"""The trainer's loop as its people meet it: customers through the WeChat webhook (real
Rasa), the trainer through the JSON API and ``kefu kb export-labels``.

A question the bot missed is grouped, labelled as a new knowledge entry, and the same
question is then answered; a hand-off is kept with its reason; the day's containment
figures count both; intent labels are exported as reviewable Rasa YAML.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.cli import main as kefu
from bot.config import settings_from_mapping
from channels.wechat.fake_api import FakeWeChatAPI
from tests.conversation.conftest import Chat
from tests.harness import Harness, gateway_config
from tests.knowledge.test_conversation import _warm
from tests.nlu.conftest import ROOT

pytestmark = pytest.mark.slow

TRAINER = {"X-API-Key": "trainer"}
READER = {"X-API-Key": "reader"}
MISSED = "你们的仓库在哪个城市"


@pytest.fixture
async def bot(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
    rasa_url: str,  # noqa: F811
) -> Harness:
    fake, server = fake_wechat
    cfg = gateway_config(redis_url, mongo_url, str(server.make_url("")), workers=2)
    cfg["nlu"] = {"enabled": True, "urls": [rasa_url], "autostart": False, "timeout_s": 5.0, "reset_after_s": 0.5}
    cfg["api"] = {"keys": [{"key": "trainer", "scopes": ["knowledge:read", "knowledge:write"]},
                           {"key": "reader", "scopes": ["knowledge:read"]}]}
    await _warm(rasa_url)
    client = await aiohttp_client(build_app(settings_from_mapping(cfg, env={})))
    return Harness(client=client, fake=fake)


async def test_a_missed_question_labelled_as_a_new_entry_is_then_answered(bot: Harness) -> None:
    c = bot.client
    first = (await Chat(bot, "oTrainA").say(MISSED))[0]
    assert "仓库" not in first and "苏州" not in first  # nothing in the bot knows this yet
    groups = (await (await c.get("/api/kb/missed/groups", headers=READER)).json())["groups"]
    group = next(g for g in groups if MISSED in g["texts"])
    assert group["size"] >= 1 and set(group["reasons"]) <= {"out_of_scope", "fallback", "low_confidence"}

    refused = await c.post("/api/kb/labels", headers=READER, json={"kind": "ignore", "texts": group["texts"]})
    assert refused.status == 403
    label = {
        "kind": "entry", "texts": group["texts"], "entry": "warehouse",
        "new_entry": {"title": "仓库 / Warehouse", "questions": ["仓库在哪里？", "Where is your warehouse?"],
                      "answers": {"zh": "我们的仓库在苏州工业园区。", "en": "Our warehouse is in Suzhou Industrial Park."}},
    }
    resp = await c.post("/api/kb/labels", headers=TRAINER, json=label)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["turns_marked"] >= 1 and body["entry_saved"]["id"] == "warehouse"
    stored = await (await c.get("/api/kb/entries/warehouse", headers=READER)).json()
    assert MISSED in stored["questions"]
    # The labelled group leaves the trainer's list.
    groups = (await (await c.get("/api/kb/missed/groups", headers=READER)).json())["groups"]
    assert not any(MISSED in g["texts"] for g in groups)

    # The trainer checks what the bot would now answer; the index is rebuilt in the
    # background after an edit (the previous one answers meanwhile), so it takes a moment.
    for _ in range(100):
        found = await (await c.post("/api/kb/search", headers=READER, json={"q": MISSED})).json()
        if found["answer"] == "warehouse":
            break
        await asyncio.sleep(0.1)
    assert found["answer"] == "warehouse", found
    again = (await Chat(bot, "oTrainB").say(MISSED))[0]
    assert "苏州工业园区" in again and "仓库" in again
    print("transcript before label:", first)
    print("transcript after label:", again)

    handed = (await Chat(bot, "oTrainC").say("转人工"))
    assert handed
    doc = await bot.runtime.store.db["missed_turns"].find_one({"conversation": "wechat:demo:oTrainC"})
    assert doc is not None and doc["reason"].startswith("handoff:") and doc["text"] == "转人工"

    figures = await (await c.get("/api/kb/containment?days=2", headers=READER)).json()
    today = figures["days"][-1]
    assert today["conversations"] == 3 and today["handed_off"] == 1
    assert today["resolved_without_human"] == pytest.approx(2 / 3, abs=1e-3)
    assert today["knowledge_answers"] == 1 and today["unanswered"] >= 1
    assert 0 < today["knowledge_answer_rate"] <= 0.5
    reason = doc["reason"].removeprefix("handoff:")
    assert today["handoffs_by_reason"] == {reason: 1} and today["handoff_rate"][reason] == pytest.approx(1 / 3, abs=1e-3)
    assert figures["days"][0]["conversations"] == 0
    print("containment today:", today)


async def test_bad_labels_get_a_clear_error_and_change_nothing(bot: Harness) -> None:
    c = bot.client
    for body, field in [
        ({"kind": "intent", "texts": ["坏了"], "intent": "Report Repair"}, "intent"),
        ({"kind": "intent", "texts": ["坏了"], "intent": "report_repair", "entities": {"device_model": "XK-1"}}, "entities"),
        ({"kind": "maybe", "texts": ["坏了"]}, "kind"),
        ({"kind": "ignore", "texts": []}, "texts"),
        ({"kind": "entry", "texts": ["坏了"], "entry": "no-such-entry"}, ""),
    ]:
        resp = await c.post("/api/kb/labels", headers=TRAINER, json=body)
        error = (await resp.json())["error"]
        assert resp.status in (400, 404) and field in error["message"], (body, error)
    assert (await (await c.get("/api/kb/labels", headers=READER)).json())["labels"] == []


async def test_intent_labels_are_exported_as_reviewable_rasa_data(bot: Harness, tmp_path: Path, redis_url: str, mongo_url: str) -> None:
    c = bot.client
    labels = [
        {"kind": "intent", "intent": "report_repair", "entities": {"device_model": "XK-8800"},
         "texts": ["我家XK-8800一直在滴水", "XK-8800 keeps dripping water"]},
        {"kind": "intent", "intent": "order_pizza", "texts": ["来个披萨"]},
        {"kind": "ignore", "texts": ["哈哈哈哈"]},
    ]
    for label in labels:
        assert (await c.post("/api/kb/labels", headers=TRAINER, json=label)).status == 201
    data = tmp_path / "data"
    shutil.copytree(ROOT / "nlu_data" / "data", data)
    known = next(line[6:] for line in (data / "repair.yml").read_text(encoding="utf-8").splitlines()
                 if line.startswith("    - ") and "[" not in line)
    assert (await c.post("/api/kb/labels", headers=TRAINER,
                         json={"kind": "intent", "intent": "report_repair", "texts": [known]})).status == 201
    config = tmp_path / "kefu.yml"
    config.write_text(yaml.safe_dump({"redis_url": redis_url, "mongo_url": mongo_url}), encoding="utf-8")
    code = await asyncio.to_thread(kefu, ["--config", str(config), "kb", "export-labels", "--data", str(data)])
    assert code == 0
    text = (data / "trainer_labels.yml").read_text(encoding="utf-8")
    print(text)
    doc = yaml.safe_load(text)
    blocks = doc["nlu"]
    assert [b["intent"] for b in blocks] == ["report_repair"]
    assert blocks[0]["examples"].splitlines() == ["- 我家[XK-8800](device_model)一直在滴水", "- [XK-8800](device_model) keeps dripping water"]
    assert "# source: trainer label" in text and "披萨" not in text and "哈哈" not in text and known not in text
    listed = (await (await c.get("/api/kb/labels?kind=intent", headers=READER)).json())["labels"]
    exported = {tuple(x["texts"]): x["exported_at"] > 0 for x in listed}
    assert exported[("我家XK-8800一直在滴水", "XK-8800 keeps dripping water")] is True
    assert exported[("来个披萨",)] is False
