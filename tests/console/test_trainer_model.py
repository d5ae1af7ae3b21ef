"""The trainer's model page without a browser: the held-out gate's figures before and
after the new examples, from a gate record written by our own code (``summarize`` of
recorded ``rasa test nlu`` reports, :func:`bot.nlu.gate.save_record`), and the switch a
trainer confirms, which two fake Rasa servers load through ``PUT /model``. A drop, a
model switched in already, or data changed since the gate blocks the switch: the page
says why, a forged post is refused, and no server is asked to load anything."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from admin.roles import Role
from bot.nlu.cli import summarize
from bot.nlu.gate import GateRecord, load_record, record_path, save_record
from bot.nlu.settings import NluSettings
from bot.nlu.training import training_hash
from channels.wechat.fake_api import FakeWeChatAPI
from tests.console.conftest import ConsoleRig, make_rig
from tests.console.test_trainer import flash_after, page_text
from tests.fake_rasa import LoadingRasa

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "tests" / "fixtures" / "nlu_gate"


@dataclass
class ModelRig:
    rig: ConsoleRig
    nlu: NluSettings
    servers: tuple[LoadingRasa, LoadingRasa]
    model: Path

    def record(self, after: str, **changes: Any) -> GateRecord:
        """The record ``kefu nlu gate --propose`` leaves, from the recorded reports."""
        record = GateRecord(at=time.time(), new="trainer_labels.yml", seed=42, tolerance=0.0,
                            before=summarize(REPORTS / "before"), after=summarize(REPORTS / after),
                            model=str(self.model), data_hash=training_hash(self.nlu), **changes)
        save_record(record_path(self.nlu.state_path), record)
        return record

    def saved(self) -> GateRecord | None:
        return load_record(record_path(self.nlu.state_path))


@pytest.fixture
async def model_rig(redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str,
                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModelRig]:
    # The environment's model folder wins over the file: here the gate record must be this test's own.
    monkeypatch.delenv("KEFU_RASA_MODELS", raising=False)
    monkeypatch.delenv("KEFU_RASA_VENV", raising=False)
    servers = (await LoadingRasa({}, cold_parse_s=0.0, loaded=True).start(), await LoadingRasa({}, cold_parse_s=0.0, loaded=True).start())
    data = tmp_path / "nlu_data"
    await asyncio.to_thread(shutil.copytree, ROOT / "nlu_data", data)
    section = {"enabled": True, "urls": [s.url for s in servers], "autostart": False, "timeout_s": 2.0,
               "data_path": str(data), "models_path": str(tmp_path / "rasa" / "models"), "venv_path": str(tmp_path / "rasa" / "venv")}
    rig = await make_rig(aiohttp_client, fake_wechat, redis_url, mongo_url, nlu=section)
    switch = rig.console.deps.model_switch
    assert switch is not None and switch.settings.models_path == tmp_path / "rasa" / "models"
    nlu = switch.settings
    model = nlu.models_path / "nlu-0123456789abcdef.tar.gz"
    await asyncio.to_thread(model.parent.mkdir, parents=True)
    await asyncio.to_thread(model.write_bytes, b"a model trained on all data")
    yield ModelRig(rig, nlu, servers, model)
    for http in rig.sessions:
        await http.close()
    for server in servers:
        await server.close()


def plain(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


async def test_the_figures_are_shown_and_a_trainer_switches_the_passed_model_in(model_rig: ModelRig) -> None:
    m = model_rig
    tina = await m.rig.person("tina", Role.TRAINER)
    assert "还没有运行过比较" in await page_text(tina, "/admin/trainer/model")
    await asyncio.to_thread(m.record, "after")

    page = await page_text(tina, "/admin/trainer/model")
    text = plain(page)
    assert "留出 80 句" in text and "通过" in text
    assert "intent macro F1 0.9250 0.9500 +0.0250" in text
    assert "intent report_repair F1 0.9000 0.9750 +0.0750" in text and "intent out_of_scope F1 0.8500 0.8750 +0.0250" in text
    assert "intent greet" not in text  # unchanged intents are not listed
    assert "entity fault F1 0.9000 0.9200 +0.0200" in text
    assert 'action="/admin/trainer/model/switch"' in page and m.model.name in text
    assert all(s.loads == [] for s in m.servers)  # nothing is switched before a trainer says so

    done = await flash_after(tina, await tina.post("/admin/trainer/model/switch"))
    assert "新模型已加载" in done
    assert [s.loads for s in m.servers] == [[str(m.model)], [str(m.model)]]
    saved = await asyncio.to_thread(m.saved)
    assert saved is not None and saved.switched_by == "tina" and saved.served == tuple(s.url for s in m.servers)
    text = plain(await page_text(tina, "/admin/trainer/model"))
    assert "已由 tina" in text and "确认切换到新模型" not in text
    [audit] = await m.rig.console.audit.recent(target=str(m.model))
    assert audit.actor == "tina" and audit.action == "nlu.switch"

    again = await flash_after(tina, await tina.post("/admin/trainer/model/switch", headers={"Referer": m.rig.base + "/admin/trainer/model"}))
    assert "switched in already by tina" in again
    assert [len(s.loads) for s in m.servers] == [1, 1]


async def test_a_drop_blocks_the_switch_and_a_forged_one_is_refused(model_rig: ModelRig) -> None:
    m = model_rig
    await asyncio.to_thread(m.record, "worse")
    rex = await m.rig.person("rex", Role.TRAINER)
    page = await page_text(rex, "/admin/trainer/model")
    text = plain(page)
    assert "未通过" in text and "intent macro F1 下降 0.9250 0.9000 -0.0250" in text
    assert "intent ask_repair_status F1 0.9500 0.8000 -0.1500" in text
    assert "/admin/trainer/model/switch" not in page and "intent macro F1 dropped" in text
    refused = await flash_after(rex, await rex.post("/admin/trainer/model/switch", headers={"Referer": m.rig.base + "/admin/trainer/model"}))
    assert "the gate failed: intent macro F1 dropped" in refused
    assert all(s.loads == [] for s in m.servers)
    saved = await asyncio.to_thread(m.saved)
    assert saved is not None and not saved.switched_at


async def test_data_changed_since_the_gate_or_a_server_refusing_switches_nothing(model_rig: ModelRig) -> None:
    m = model_rig
    await asyncio.to_thread(m.record, "after")
    labels = m.nlu.data_path / "data" / "trainer_labels.yml"
    await asyncio.to_thread(labels.write_text, 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 早上好呀\n', encoding="utf-8")
    tina = await m.rig.person("tina", Role.TRAINER)
    assert "the training data changed since the gate ran" in plain(await page_text(tina, "/admin/trainer/model"))
    refused = await flash_after(tina, await tina.post("/admin/trainer/model/switch", headers={"Referer": m.rig.base + "/admin/trainer/model"}))
    assert "changed since" in refused and all(s.loads == [] for s in m.servers)

    await asyncio.to_thread(labels.unlink)
    m.servers[1].refuse_load = True
    failed = await flash_after(tina, await tina.post("/admin/trainer/model/switch", headers={"Referer": m.rig.base + "/admin/trainer/model"}))
    assert "not switched" in failed and "500" in failed
    saved = await asyncio.to_thread(m.saved)
    assert saved is not None and not saved.switched_at  # a second try goes through every server again
    m.servers[1].refuse_load = False
    assert "新模型已加载" in await flash_after(tina, await tina.post("/admin/trainer/model/switch"))
    assert [s.loads for s in m.servers] == [[str(m.model), str(m.model)], [str(m.model)]]


async def test_agents_cannot_open_the_model_page(model_rig: ModelRig) -> None:
    al = await model_rig.rig.person("al", Role.AGENT)
    assert (await al.get("/admin/trainer/model")).status == 403
    assert (await al.post("/admin/trainer/model/switch")).status == 403
