"""A first run: `kefu run` with no NLU model serves at once, trains in the background
with a progress line, and switches to the model without a restart.

Real parts throughout: the embedded demo (its own Redis and MongoDB-protocol server,
the demo WeChat account), `kefu simulate wechat` through the signed webhook, a real
`rasa train nlu` in the background and a real Rasa server started on the result. The
training data is small (a light pipeline with DIET over a few examples) so that the
run fits in a test; the product's data takes 10-15 minutes on two cores.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.demo import demo_config
from bot.nlu import service
from bot.nlu.settings import NluSettings
from tests.nlu.conftest import ROOT
from tests.nlu.test_gate import write_data
from tests.services import free_port

CONFIG = """recipe: default.v1
language: en
assistant_id: first-run-test
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 3
  - name: DIETClassifier
    epochs: 40
    random_seed: 1
"""
DATA = {
    "ask_repair_status": ["where is my repair?", "repair status please", "when is the engineer coming",
                          "status of my repair ticket", "is my repair done", "any news on my repair"],
    "thank": ["thanks a lot mate", "thank you", "many thanks", "cheers", "thanks so much", "much appreciated"],
    "out_of_scope": ["what is the weather", "tell me a joke", "who won the match", "sing a song",
                     "what time is it in paris", "recommend a movie"],
}
QUESTION = "where is my repair?"


def _say(text: str, cwd: Path, env: dict[str, str], sender: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", "kefu.yml", "simulate", "wechat", "--account", "demo",
         "--sender", sender, "--text", text],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen[bytes], timeout_s: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"{pattern!r} not seen:\n" + log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.no_blockbuster
def test_a_first_run_answers_at_once_trains_in_the_background_and_switches(tmp_path: Path) -> None:
    data = tmp_path / "nlu_data"
    write_data(data, CONFIG, DATA)
    venv = NluSettings.from_mapping({}).venv_path  # KEFU_RASA_VENV: the shared venv, not rebuilt
    models = tmp_path / "rasa" / "models"
    port = free_port()
    settings = NluSettings.from_mapping({"data_path": str(data), "models_path": str(models), "venv_path": str(venv)}, environ={})
    service.install(settings)  # a no-op where the pinned venv exists
    config = demo_config("first-run-key", "first-run-password")
    config["nlu"] = {"data_path": str(data), "models_path": str(models), "venv_path": str(venv),
                     "urls": [f"http://127.0.0.1:{port}"]}
    (tmp_path / "kefu.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env["KEFU_HTTP_PORT"] = str(free_port())
    env["PYTHONPATH"] = str(ROOT)
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", "kefu.yml", "run"], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(log_path, "gateway ready", proc, 120)
        assert not list(models.glob("*.tar.gz"))  # serving before any model exists
        greeting = _say("hello", tmp_path, env, "oFirstRun")
        assert "How can I help" in greeting or "help you" in greeting, greeting
        learning = _say(QUESTION, tmp_path, env, "oFirstRun")
        assert "still learning" in learning and "agent" in learning, learning
        # The visible progress line: epochs and the time left, from the real training.
        line = _wait_for(log_path, r"nlu: training in the background \(\d+ s\): epoch \d+/40, about [^\n]+ left", proc, 600)
        print(line.group(0))
        _wait_for(log_path, r"nlu: ready after", proc, 600)
        answered = _say(QUESTION, tmp_path, env, "oFirstRun")
        assert "can't find a repair ticket" in answered, answered
        assert len(list(models.glob("*.tar.gz"))) == 1
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
