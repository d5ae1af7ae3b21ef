"""Turning on the optional understanding parts: Rasa NLU and local speech recognition.

Both are heavy (a 2.7 GB Rasa environment, Whisper weights) and are prepared by
``kefu nlu install && kefu nlu train`` and ``kefu speech install``. With
``enabled: auto`` (the default) speech is used when it has been prepared, and NLU
always: when no model has been trained yet, ``kefu run`` answers at once with its
keyword layer and trains in the background (:mod:`bot.nlu.background`), then starts
Rasa on the new model and switches to it without a restart. ``enabled: true`` insists
(messages wait for NLU and the customer gets a holding reply); ``false`` turns the part off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.nlu.errors import NluError
from bot.nlu.readiness import NluReadiness
from bot.nlu.settings import NluSettings
from bot.store import MessageStore
from bot.voice import Corrections, VoiceStep
from bot.voice_archive import VoiceArchive

log = logging.getLogger(__name__)


def _mode(section: Mapping[str, Any]) -> str:
    value = section.get("enabled", "auto")
    if value is True or str(value).lower() in ("true", "yes", "on"):
        return "on"
    if value is False or str(value).lower() in ("false", "no", "off"):
        return "off"
    return "auto"


@dataclass(frozen=True, slots=True)
class NluPlan:
    """How this gateway gets its NLU: the settings, and whether it trains the first model."""

    settings: NluSettings
    train_first: bool = False


def understanding_settings(settings: Any) -> NluPlan | None:
    """How NLU is to be used, or ``None`` when it is off (blocking: looks at disk)."""
    from bot.nlu.training import latest_model

    section = dict(settings.section("nlu"))
    mode = _mode(section)
    if mode == "off":
        return None
    section.pop("enabled", None)
    section.setdefault("autostart", True)  # `kefu run` starts Rasa when none answers
    nlu = NluSettings.from_mapping(section)
    # A Rasa of its own (autostart) with no model yet: train it while serving. An
    # external one (autostart: false) gets its model from whoever runs it.
    train_first = nlu.autostart and latest_model(nlu) is None
    return NluPlan(nlu, train_first)


async def train_then_start_rasa(
    nlu: NluSettings, http: aiohttp.ClientSession, stop: asyncio.Event, readiness: NluReadiness
) -> None:
    """The first model, trained while the keyword layer serves; then Rasa on it."""
    from bot.nlu.background import train_in_background

    if not await train_in_background(nlu, readiness, stop):
        return
    readiness.expect()  # from now on messages wait (quietly) for the model to load
    await start_rasa(nlu, http, stop, readiness)


async def start_rasa(
    nlu: NluSettings, http: aiohttp.ClientSession, stop: asyncio.Event, readiness: NluReadiness | None = None
) -> None:
    """Start Rasa on the configured loopback URLs when none answers; stop it at the end.

    When it cannot be started, ``readiness`` learns that the wait is not a short one.
    """
    from bot.nlu.server import autostart

    try:
        servers = await autostart(nlu, http)
    except NluError as exc:
        log.error("could not start Rasa (%s); messages get a holding reply, and a person after nlu.max_wait_s", exc)
        if readiness is not None:
            readiness.not_coming_soon()
        return
    if servers:
        log.info("Rasa started: %s", ", ".join(s.url for s in servers))
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


async def build_voice(
    settings: Any, store: MessageStore, archive: VoiceArchive | None = None, corrections: Corrections | None = None
) -> VoiceStep:
    """The voice step; ``corrections`` keeps the transcripts customers corrected (the trainer's)."""
    section = dict(settings.section("speech"))
    mode = _mode(section)
    section.pop("enabled", None)
    try:
        from speech import SpeechSettings, build_transcriber
        from speech.install import models_installed
    except ImportError as exc:  # the speech extra is not installed
        log.warning("speech is off (%s): voice notes are acknowledged, not transcribed", exc)
        return VoiceStep(None, None, store, archive=archive, corrections=corrections)
    speech_settings = SpeechSettings.from_mapping(section)
    if mode == "off":
        return VoiceStep(None, speech_settings, store, archive=archive, corrections=corrections)
    if not await asyncio.to_thread(models_installed, speech_settings.model_path, speech_settings.engine):
        log.warning("speech is off: no Whisper model at %s (run `kefu speech install`)", speech_settings.model_path)
        return VoiceStep(None, speech_settings, store, archive=archive, corrections=corrections)
    transcriber = build_transcriber(speech_settings)
    # Load the model now, in the background, so the first voice note does not pay for it.
    warm = getattr(transcriber, "warm_up", None)
    if warm is not None:
        task = asyncio.create_task(warm(), name="speech-warm-up")
        task.add_done_callback(_log_warm_up)
    model = await asyncio.to_thread(_model_label, speech_settings)
    return VoiceStep(transcriber, speech_settings, store, model=model, archive=archive, corrections=corrections)


def _model_label(settings: Any) -> str:
    """The model folder and the engine library's version (package metadata: read from disk)."""
    from importlib import metadata

    package = {"faster": "faster-whisper", "openai": "openai-whisper"}.get(str(settings.engine), str(settings.engine))
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{Path(str(settings.model_path)).name} ({package} {version})"


def _log_warm_up(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("loading the Whisper model failed: %s", task.exception())
