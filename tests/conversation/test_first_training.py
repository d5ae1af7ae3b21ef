"""Serving before the first NLU model exists, and switching to it without a restart.

Through the signed WeChat webhook, against a Rasa on loopback that is up but has no
model yet (as on a first run, while the model trains): the keyword layer answers at
once, everything else is told the bot is still learning (nothing waits, nobody gets a
"busy" reply), and ``/readyz`` is ready and says so. Once the server has a model, the
same gateway warms it up and its full skills answer. The background training's progress
line is read from real Rasa output.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.nlu.background import _follow, progress_of
from bot.nlu.readiness import TrainingProgress
from channels.wechat.fake_api import FakeWeChatAPI
from tests.conversation.test_cold_start import INTENTS, STATUS_NONE, gateway_with, texts, until
from tests.fake_rasa import LoadingRasa


@pytest.fixture
async def rasa() -> AsyncIterator[LoadingRasa]:
    fake = LoadingRasa(INTENTS, cold_parse_s=0.5, loaded=True, model=False)
    await fake.start()
    yield fake
    await fake.close()


async def test_the_keyword_layer_serves_until_the_model_arrives_then_the_full_skills(
    redis: Any, aiohttp_client: Any, fake_wechat: tuple[FakeWeChatAPI, TestServer], redis_url: str, mongo_url: str, rasa: LoadingRasa
) -> None:
    bot = await gateway_with(aiohttp_client, fake_wechat, redis_url, mongo_url, rasa.url, quiet_wait_s=60)
    # Readiness finds a server without a model: the keyword layer is all there is.
    await until(lambda: bot.runtime.nlu_readiness is not None and bot.runtime.nlu_readiness.absent, 5)
    ready = await bot.client.get("/readyz")
    check = (await ready.json())["checks"]["nlu"]
    assert ready.status == 200 and check["ok"] and "no model yet" in check["detail"], check

    await bot.say("oFirst", "你好")
    await until(lambda: len(texts(bot, "oFirst")) == 1, 5)
    assert "有什么可以帮您" in texts(bot, "oFirst")[0]
    await bot.say("oFirst", "where is my repair?")  # needs NLU: answered at once, not held
    await until(lambda: len(texts(bot, "oFirst")) == 2, 5)
    learning = texts(bot, "oFirst")[1]
    assert "still learning" in learning and "agent" in learning and "busy" not in learning, learning
    assert rasa.parses == []

    rasa.model = True  # the trained model is loaded into the running server
    await until(lambda: bot.runtime.nlu_readiness is not None and bot.runtime.nlu_readiness.ready, 10)
    await bot.say("oFirst", "where is my repair?")
    await until(lambda: len(texts(bot, "oFirst")) == 3, 10)
    assert STATUS_NONE in texts(bot, "oFirst")[2]
    assert (await bot.client.get("/readyz")).status == 200


def test_the_progress_line_of_a_real_training() -> None:
    # A line of `rasa train nlu` on the product's data (DIET's tqdm bar), as run_streamed
    # relays it every ~10 s.
    line = "[  495s] Epochs:  42%|████▏     | 25/60 [08:15<08:08, 13.97s/it, t_loss=2.72, i_acc=0.997, e_f1=0.978]"
    progress = progress_of(line)
    assert progress == TrainingProgress("epochs", 25, 60, 488)
    assert str(progress) == "epoch 25/60, about 8 min 8 s left"
    assert str(progress_of("Epochs:   2%|▏  | 1/60 [00:01<01:07,  1.14s/it]")) == "epoch 1/60, about 1 min 7 s left"
    assert progress_of("nlu: training nlu-abc (log: x)") == TrainingProgress("preparing")
    assert progress_of("2026-12-07 12:00:00 INFO  rasa.engine.training - Starting to train component 'DIET'") is None


async def test_the_first_epoch_line_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A short training on a fast machine runs its epochs within LOG_EVERY_S of the stage
    before: the user still sees an epoch line as soon as the epochs start."""
    stream = asyncio.StreamReader()
    stream.feed_data(b"nlu: training nlu-abc (log: x)\n")
    stream.feed_data(b"Epochs:   0%|          | 0/40 [00:00<?, ?it/s]\r")
    stream.feed_data(b"Epochs:   2%|\xe2\x96\x8e         | 1/40 [00:06<04:21,  6.69s/it]\r")
    stream.feed_data(b"Epochs: 100%|\xe2\x96\x88\xe2\x96\x88| 40/40 [00:09<00:00,  4.40it/s]\n")
    stream.feed_eof()
    readiness = SimpleNamespace(progress=None)  # _follow only records the progress on it
    with caplog.at_level(logging.INFO, logger="bot.nlu.background"):
        await _follow(stream, readiness)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.nlu.background"]
    assert len(lines) == 2 and "preparing the training data" in lines[0], lines
    assert "epoch 0/40, about an unknown time left" in lines[1], lines  # then quiet for LOG_EVERY_S
    assert readiness.progress == TrainingProgress("epochs", 40, 40, 0)
