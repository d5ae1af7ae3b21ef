"""The first NLU training, in the background of a running gateway.

On a first run there is no model, and training one takes minutes (about 12 on a busy
2-core machine, after a 2-minute install of Rasa's environment). The gateway does not
wait for it: it serves with its keyword layer (NLU is *absent*, see
:mod:`bot.nlu.readiness`) while a child process installs Rasa if needed and trains.
Its output is read for progress: a log line about every 10 s ("epoch 27/60, about 37 s
left") and the same text in ``/readyz``. When the model is written, NLU is expected:
Rasa is started on it and warmed up, and the skills that need NLU take over.

The child is ``python -m bot.nlu.background VENV MODELS DATA``: a process of its own, so
that a gateway stopping mid-training ends it at once (Rasa dies with its parent).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from pathlib import Path

from bot.nlu.readiness import NluReadiness, TrainingProgress
from bot.nlu.settings import NluSettings

log = logging.getLogger(__name__)

# tqdm's bar as Rasa prints it: "Epochs:  45%|████▌     | 27/60 [00:30<00:37, 1.14s/it, t_loss=…]"
_EPOCHS = re.compile(r"Epochs:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([\d:]+)<([\d:?]+)")
LOG_EVERY_S = 10.0


def progress_of(line: str) -> TrainingProgress | None:
    """What a line of the training's output says about its progress, if anything."""
    if m := _EPOCHS.search(line):
        return TrainingProgress("epochs", int(m.group(1)), int(m.group(2)), _seconds(m.group(4)))
    stripped = line.strip()
    if stripped.startswith("nlu: installing") or "Installing collected packages" in stripped:
        return TrainingProgress("installing")
    if stripped.startswith("nlu: training"):
        return TrainingProgress("preparing")
    return None


def _seconds(clock: str) -> int | None:
    """tqdm's "01:07" or "1:02:03" in seconds; ``None`` for "?"."""
    if "?" in clock:
        return None
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


async def train_in_background(settings: NluSettings, readiness: NluReadiness, stop: asyncio.Event) -> bool:
    """Install (if needed) and train in a child process; whether a model was written.

    ``readiness.progress`` follows the child's output; the gateway's log gets a line
    about every ``LOG_EVERY_S``. Stopping the gateway ends the child.
    """
    log.info("nlu: no trained model yet; training in the background, the keyword layer answers meanwhile")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.nlu.background",
        str(settings.venv_path), str(settings.models_path), str(settings.data_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    reading = asyncio.create_task(_follow(proc.stdout, readiness))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if proc.returncode is None and stop.is_set():
            proc.terminate()
        reading.cancel()
        rc = await proc.wait()
    if stop.is_set():
        return False
    if rc != 0:
        readiness.progress = TrainingProgress("failed")
        log.error("nlu: the background training failed (exit %d); the keyword layer goes on answering. "
                  "Run `kefu nlu install && kefu nlu train` to see why.", rc)
        return False
    log.info("nlu: model trained; loading it (the keyword layer answers until it is ready)")
    return True


async def _follow(stream: asyncio.StreamReader, readiness: NluReadiness) -> None:
    start = last = time.monotonic()
    logged = ""  # the stage of the last line logged: a new stage is logged at once
    buf = b""
    while chunk := await stream.read(4096):
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            line = raw.decode(errors="replace")
            log.debug("nlu training: %s", line)
            progress = progress_of(line)
            if not progress:
                continue
            readiness.progress = progress
            now = time.monotonic()
            # The first epoch line at once (a short training on a fast machine can end
            # within LOG_EVERY_S of the stage before it), then one about every LOG_EVERY_S.
            if now - last >= LOG_EVERY_S or progress.stage != "epochs" or logged != "epochs":
                log.info("nlu: training in the background (%.0f s): %s", now - start, progress)
                last, logged = now, progress.stage


def main(argv: list[str]) -> int:
    """The child: install Rasa's venv if it is not current, then train; progress on stdout."""
    from bot.nlu.environment import install
    from bot.nlu.errors import NluError
    from bot.nlu.training import train

    venv, models, data = (Path(a) for a in argv)
    settings = NluSettings(venv_path=venv, models_path=models, data_path=data)
    try:
        install(settings, out=sys.stdout)
        # Every bar, about once a second: the gateway reading this decides what to log.
        train(settings, out=sys.stdout, bar_every_s=1.0)
    except NluError as exc:
        print(f"nlu: {exc}", file=sys.stdout, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
