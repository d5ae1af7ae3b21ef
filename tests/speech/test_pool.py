"""The async transcriber: off the event loop, bounded, and typed errors across the pool."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import FrozenInstanceError, fields

import pytest

from speech import (
    AudioCorrupt,
    AudioEmpty,
    AudioTooLong,
    SpeechBusy,
    SpeechClosed,
    SpeechSettings,
    Transcript,
    build_transcriber,
)
from speech.pool import PooledTranscriber, _ProcessEngine
from tests.speech.conftest import Clips

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def en_amr(clips: Clips) -> bytes:
    return clips.read("en.amr")


@pytest.fixture(scope="module")
def zh_amr(clips: Clips) -> bytes:
    # Not zh.silk: its robotic Mandarin decodes below whisper's log-probability threshold,
    # so whisper falls back to temperature sampling and the text varies run to run.
    return clips.read("zh.amr")


@pytest.fixture(scope="module")
def en_silk(clips: Clips) -> bytes:
    return clips.read("en.silk")


@pytest.fixture
async def transcriber(settings_for: Callable[..., SpeechSettings]) -> AsyncIterator[PooledTranscriber]:
    t = build_transcriber(settings_for(workers=1, max_queue=2))
    yield t
    await t.close()


def test_transcript_is_the_contract_shape() -> None:
    assert [f.name for f in fields(Transcript)] == [
        "text", "language", "confidence", "duration_s", "elapsed_s", "engine",
    ]
    t = Transcript("hi", "en", 0.9, 1.0, 0.2, "faster")
    with pytest.raises(FrozenInstanceError):
        t.text = "changed"  # type: ignore[misc]
    assert not hasattr(t, "__dict__")  # slotted


async def test_transcribes_amr_and_silk(
    transcriber: PooledTranscriber, en_amr: bytes, zh_amr: bytes, en_silk: bytes
) -> None:
    en = await transcriber.transcribe(en_amr, format="amr")
    assert en.language == "en" and "tractor" in en.text.lower()
    assert en.engine == "faster"
    assert 4.0 < en.duration_s < 4.6
    assert 0 < en.elapsed_s
    zh = await transcriber.transcribe(zh_amr, format="amr")
    assert zh.language == "zh"
    assert "空调" in zh.text
    silk = await transcriber.transcribe(en_silk, format="")  # sniffed
    assert "tractor" in silk.text.lower()


async def test_event_loop_keeps_ticking_during_a_transcription(
    transcriber: PooledTranscriber, en_amr: bytes
) -> None:
    # The first call also loads the model: that must happen off the loop too.
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        transcript = await transcriber.transcribe(en_amr, format="amr")
    finally:
        wall = time.perf_counter() - started
        done.set()
        await tick
    assert transcript.text
    assert len(gaps) > 20, "the ticker hardly ran while the transcription did"
    assert_loop_was_free(gaps, wall)


def assert_loop_was_free(gaps: list[float], wall: float) -> None:
    # Work done on the loop would show as one gap about as long as the whole job (model
    # load plus seconds of decoding). The bound scales with the job's wall time so that a
    # machine loaded by other work (slower job, slower wake-ups alike) does not flake it.
    bound = max(0.25, wall / 4)
    assert max(gaps) < bound, f"the event loop stalled for {max(gaps):.2f} s during a {wall:.1f} s job"


async def test_full_queue_raises_speech_busy_then_recovers(
    settings_for: Callable[..., SpeechSettings], en_amr: bytes
) -> None:
    t = build_transcriber(settings_for(workers=1, max_queue=1))
    try:
        running = [asyncio.create_task(t.transcribe(en_amr, format="amr")) for _ in range(2)]
        await asyncio.sleep(0)  # let both tasks take their places
        with pytest.raises(SpeechBusy, match="try again later"):
            await t.transcribe(en_amr, format="amr")
        results = await asyncio.gather(*running)
        assert all(r.text for r in results)
        assert t.in_flight == 0
        assert (await t.transcribe(en_amr, format="amr")).text  # room again
    finally:
        await t.close()


async def test_cancelled_caller_keeps_its_slot_until_the_job_ends(
    settings_for: Callable[..., SpeechSettings], en_amr: bytes
) -> None:
    t = build_transcriber(settings_for(workers=1, max_queue=0))
    try:
        task = asyncio.create_task(t.transcribe(en_amr, format="amr"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The worker is still busy with it: no second job may start beside it.
        with pytest.raises(SpeechBusy):
            await t.transcribe(en_amr, format="amr")
    finally:
        await t.close()
    assert t.in_flight == 0


async def test_bad_audio_is_a_typed_error_through_the_pool(
    transcriber: PooledTranscriber, clips: Clips
) -> None:
    with pytest.raises(AudioEmpty):
        await transcriber.transcribe(b"", format="amr")
    with pytest.raises(AudioCorrupt):
        await transcriber.transcribe(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", format="wav")
    two_hours = b"#!AMR\n" + bytes([0x7C]) * (2 * 3600 * 50)
    with pytest.raises(AudioTooLong):
        await transcriber.transcribe(two_hours, format="amr")
    assert transcriber.in_flight == 0


async def test_closed_transcriber_refuses_work(transcriber: PooledTranscriber, en_amr: bytes) -> None:
    await transcriber.close()
    with pytest.raises(SpeechClosed):
        await transcriber.transcribe(en_amr, format="amr")
    await transcriber.close()  # idempotent


async def test_openai_engine_runs_in_a_worker_process(
    settings_for: Callable[..., SpeechSettings], openai_model_path: str, en_amr: bytes
) -> None:
    t = build_transcriber(settings_for(engine="openai", model_path=openai_model_path, beam_size=1))
    gaps: list[float] = []
    try:
        started = time.perf_counter()
        job = asyncio.create_task(t.transcribe(en_amr, format="amr"))
        while not job.done():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - before)
        transcript = job.result()
        wall = time.perf_counter() - started
        with pytest.raises(AudioEmpty):  # errors cross the process boundary typed
            await t.transcribe(b"", format="amr")
    finally:
        await t.close()
    assert transcript.engine == "openai"
    assert "tractor" in transcript.text.lower()
    assert_loop_was_free(gaps, wall)


async def test_close_finishes_the_running_note_and_fails_queued_ones(
    settings_for: Callable[..., SpeechSettings], en_amr: bytes
) -> None:
    t = build_transcriber(settings_for(workers=1, max_queue=2))
    tasks = [asyncio.create_task(t.transcribe(en_amr, format="amr")) for _ in range(3)]
    await asyncio.sleep(0.05)  # the first is running (loading the model), two are queued
    await t.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], Transcript) and results[0].text
    assert all(isinstance(r, SpeechClosed) for r in results[1:]), results
    assert t.in_flight == 0


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
def test_transcription_processes_run_below_text_traffic(settings_for: Callable[..., SpeechSettings]) -> None:
    # The children's scheduling is what keeps text replies fast while notes transcribe:
    # the idle class by default, niceness 19 either way; the gateway itself is untouched.
    for idle, policy in ((True, os.SCHED_IDLE), (False, os.SCHED_OTHER)):
        engine = _ProcessEngine(settings_for(idle_class=idle))
        try:
            pool = engine._pool()
            assert pool.submit(os.sched_getscheduler, 0).result(timeout=60) == policy
            assert pool.submit(os.nice, 0).result(timeout=60) == 19
        finally:
            engine.shutdown()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
