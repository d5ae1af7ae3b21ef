"""The held-out gate for the trainer's new examples, and the model switch without a restart.

The comparison logic is checked on summaries; the whole gate runs on a small real
training (a light pipeline over a few dozen examples, so that it fits in a test: the
product's pipeline and data take minutes per model on two cores), against a real Rasa
server that is switched to the new model while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.nlu import service
from bot.nlu.cli import cmd_gate
from bot.nlu.gate import compare, load_record, record_path
from bot.nlu.settings import NluSettings
from bot.nlu.switch import ModelSwitch
from tests.nlu.conftest import ROOT


def _why_not(switch: ModelSwitch, record: Any) -> str:
    return str(asyncio.run(switch.why_not(record)))


def _switched(switch: ModelSwitch, by: str) -> Any:
    return asyncio.run(switch.switch(by=by))


def _summary(macro: float, device: float, per: dict[str, float]) -> dict[str, Any]:
    return {"intent": {"macro_f1": macro, "accuracy": macro, "per_intent": per, "support": 10},
            "entities": {"device_model": {"f1": device}}}


def test_the_gate_passes_when_nothing_gated_drops_and_names_what_dropped_otherwise() -> None:
    before = _summary(0.95, 0.97, {"greet": 1.0, "report_repair": 0.9})
    same = compare(before, _summary(0.95, 0.97, {"greet": 0.9, "report_repair": 1.0}))
    assert same.passed and "passed" in same.table()  # per-intent moves are shown, not gated
    assert "intent greet F1" in same.table()
    worse = compare(before, _summary(0.96, 0.95, {"greet": 1.0, "report_repair": 0.9}))
    assert not worse.passed and [r.metric for r in worse.dropped] == ["entity device_model F1"]
    assert "FAILED (entity device_model F1 dropped)" in worse.table()
    assert compare(before, _summary(0.94, 0.97, {}), tolerance=0.02).passed
    assert not compare(before, _summary(0.92, 0.97, {}), tolerance=0.02).passed


CONFIG = """recipe: default.v1
language: zh
assistant_id: gate-test
pipeline:
  - name: JiebaTokenizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 2
  - name: LogisticRegressionClassifier
"""

DATA = {
    "report_repair": ["空调坏了", "机器不制冷了", "热水器不出热水", "洗衣机不转了", "冰箱坏了快来修", "空调不制热",
                      "设备坏了要报修", "机器坏了", "我要报修", "热水器坏了"],
    "ask_invoice": ["发票怎么开", "我要开发票", "能开专票吗", "发票什么时候寄", "开个发票", "发票抬头写错了",
                    "电子发票在哪下载", "怎么申请发票", "发票开错了", "要一张发票"],
    "greet": ["你好", "您好", "在吗", "早上好", "晚上好", "哈喽", "有人吗", "你好啊", "嗨", "下午好"],
}
# The customer's "dripping" words occur in no example; only 下午 does (in a greeting).
NEW = ["一直滴滴答答", "滴滴答答漏个不停", "室内机滴滴答答", "滴答滴答往下掉", "外机一直滴答"]
SENTENCE = "下午一直滴滴答答"


def write_data(root: Path, config: str = CONFIG, data: dict[str, list[str]] = DATA) -> None:
    """A small NLU data folder at ``root``: ``config``, and ``data`` (intent -> examples)."""
    (root / "data").mkdir(parents=True)
    # The same pinned Rasa set as the product's data: the venv is shared, not rebuilt.
    shutil.copyfile(ROOT / "nlu_data" / "requirements-rasa.txt", root / "requirements-rasa.txt")
    (root / "config.yml").write_text(config, encoding="utf-8")
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in data.items():
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {e}" for e in examples)]
    (root / "data" / "base.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _parse(url: str, text: str) -> str:
    request = urllib.request.Request(f"{url}/model/parse", data=json.dumps({"text": text}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["intent"]["name"])


@pytest.mark.slow
def test_new_examples_pass_the_gate_and_the_running_server_switches_to_them(tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "nlu_data"
    write_data(data)
    port = service.free_port()
    settings = NluSettings.from_mapping(
        {"data_path": str(data), "models_path": str(tmp_path / "rasa" / "models"), "urls": [f"http://127.0.0.1:{port}"]},
        environ={k: v for k, v in os.environ.items() if k == "KEFU_RASA_VENV"},
    )
    service.install(settings)
    old = service.train(settings)
    with service.running_servers(settings, old, [port]) as servers:
        url = servers[0].url
        assert _parse(url, SENTENCE) != "report_repair"  # before: the dripping is not understood
        labels = data / "data" / "trainer_labels.yml"
        labels.write_text('version: "3.1"\nnlu:\n# source: trainer label t1\n- intent: report_repair\n  examples: |\n'
                          + "".join(f"    - {e}\n" for e in NEW), encoding="utf-8")
        args = argparse.Namespace(nlu_settings=settings, new=None, seed=1, training_fraction=0.7, tolerance=0.0, switch=True,
                                  propose=False)
        assert cmd_gate(args) == 0
        out = capsys.readouterr().out
        print(out)
        assert "intent macro F1" in out and "gate (no gated metric may drop by more than 0.0): passed" in out
        new = service.model_path(settings)
        assert new != old and f"now serving {new.name}" in out
        assert _parse(url, SENTENCE) == "report_repair"  # the same server, the new model
        record = load_record(record_path(settings.state_path))  # what the trainer's model page shows
        assert record is not None and record.comparison.passed and record.model == str(new.resolve())
        assert record.switched_by == "kefu nlu gate --switch" and record.served == (url,)

        # --propose: the same comparison (the models are cached by data hash), the switch left
        # to a trainer, who confirms it on the console (ModelSwitch, as the page does).
        assert cmd_gate(argparse.Namespace(**{**vars(args), "switch": False, "propose": True})) == 0
        assert "waits for a trainer" in capsys.readouterr().out
        switch = ModelSwitch(settings)
        proposed = load_record(record_path(settings.state_path))
        assert proposed is not None and not proposed.switched_at and _why_not(switch, proposed) == ""
        switched = _switched(switch, "tina")
        assert switched.switched_by == "tina" and _parse(url, SENTENCE) == "report_repair"

        # Examples that teach the wrong thing are refused and the server keeps its model.
        labels.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n'
                          + "".join(f"    - {e}\n" for e in DATA["ask_invoice"][:8] + DATA["report_repair"][:8]),
                          encoding="utf-8")
        assert cmd_gate(args) == 1
        refused = capsys.readouterr()
        print(refused.out)
        assert "FAILED (intent macro F1 dropped)" in refused.out and "not switching" in refused.err
        assert _parse(url, SENTENCE) == "report_repair"
        failed = load_record(record_path(settings.state_path))
        assert failed is not None and not failed.comparison.passed and failed.model == ""
        assert "the gate failed: intent macro F1 dropped" in _why_not(switch, failed)
