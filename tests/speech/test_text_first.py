"""Text first: transcription processes stop while text turns are handled, and always progress."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from speech import SpeechSettings, Transcript, build_transcriber
from speech.text_first import TextFirst
from tests.speech.conftest import Clips

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def state(pid: int) -> str:
    """The kernel's one-letter state of a process: T = stopped, R/S = running or sleeping."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


async def settles(pid: int, stopped: bool, within_s: float = 2.0) -> bool:
    """Whether the process reaches (or stays in) that state within ``within_s``: SIGSTOP and
    SIGCONT are delivered asynchronously, and on a loaded machine /proc can still show the
    old state for a moment after ``kill`` returned."""
    deadline = time.monotonic() + within_s
    while (state(pid) == "T") != stopped:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


@pytest.fixture
def child() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"])
    yield proc.pid
    proc.kill()
    proc.wait()


async def test_a_text_turn_stops_the_children_and_its_end_continues_them(child: int) -> None:
    gate = TextFirst(lambda: [child], max_pause_s=30, min_run_s=1)
    with gate.turn():
        assert await settles(child, stopped=True) and gate.paused
        with gate.turn():  # a second turn at once: still stopped
            assert state(child) == "T"
        assert state(child) == "T"  # the first turn is still in flight
    assert await settles(child, stopped=False) and not gate.paused


async def test_steady_text_cannot_starve_voice(child: int) -> None:
    gate = TextFirst(lambda: [child], max_pause_s=0.5, min_run_s=0.5)
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    with gate.turn():
        while time.monotonic() - started < 1.7:
            seen.append((time.monotonic() - started, state(child)))
            await asyncio.sleep(0.02)
    # stopped until 0.5 s, running until 1.0 s, stopped until 1.5 s, running again
    # (the margins leave room for a loaded machine's late timers; SIGSTOP lands
    # asynchronously, so the first look may still see the child running)
    stopped_at = min(t for t, s in seen if s == "T")
    assert stopped_at < 0.3
    assert all(s == "T" for t, s in seen if stopped_at <= t < 0.4)
    assert all(s != "T" for t, s in seen if 0.65 < t < 0.9)
    assert all(s == "T" for t, s in seen if 1.15 < t < 1.4)
    assert any(s != "T" for t, s in seen if 1.6 < t)
    assert state(child) != "T"


async def test_closed_gate_continues_the_children_and_never_stops_them_again(child: int) -> None:
    gate = TextFirst(lambda: [child], max_pause_s=30, min_run_s=1)
    with gate.turn():
        gate.close()
        assert await settles(child, stopped=False)
        with gate.turn():
            await asyncio.sleep(0.05)  # time for a stop, had one been sent, to arrive
            assert state(child) != "T"


async def test_a_dead_child_is_skipped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    gate = TextFirst(lambda: [proc.pid], max_pause_s=30, min_run_s=1)
    with gate.turn():
        assert not gate.paused


@pytest.mark.slow
async def test_transcription_waits_for_the_text_turn_then_finishes(
    settings_for: Callable[..., SpeechSettings], clips: Clips
) -> None:
    audio = clips.read("en.amr")
    t = build_transcriber(settings_for(workers=1, max_pause_s=60))
    try:
        await t.warm_up()
        alone = (await t.transcribe(audio, format="amr")).elapsed_s
        turn = t.text_turn()
        turn.__enter__()
        job = asyncio.create_task(t.transcribe(audio, format="amr"))
        await asyncio.sleep(max(2.0, 3 * alone))
        assert not job.done(), "the note was transcribed while a text turn held the CPU"
        turn.__exit__(None, None, None)
        heard = await asyncio.wait_for(job, 60)
        assert isinstance(heard, Transcript) and "tractor" in heard.text.lower()
    finally:
        await t.close()


@pytest.mark.slow
async def test_close_during_a_text_turn_does_not_hang(settings_for: Callable[..., SpeechSettings], clips: Clips) -> None:
    t = build_transcriber(settings_for(workers=1, max_pause_s=60))
    await t.warm_up()
    with t.text_turn():
        job = asyncio.create_task(t.transcribe(clips.read("en.amr"), format="amr"))
        await asyncio.sleep(0.2)
        await asyncio.wait_for(t.close(), 60)  # the running note is let go and finishes
    assert "tractor" in (await job).text.lower()


def test_children_die_with_a_killed_gateway(settings_for: Callable[..., SpeechSettings], tmp_path: Path) -> None:
    # The gateway stops its children and is then killed outright: a stopped child never
    # reads its closed pipe, so only PR_SET_PDEATHSIG ends it.
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from speech import SpeechSettings
        from speech.pool import _ProcessEngine
        if __name__ == "__main__":  # the spawned child imports this file too
            engine = _ProcessEngine(SpeechSettings(workers=1))
            pid = engine._pool().submit(os.getpid).result(timeout=60)
            os.kill(pid, signal.SIGSTOP)
            print(pid, flush=True)
            time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while state(pid) != "T" and time.monotonic() < deadline:  # signals land asynchronously
            time.sleep(0.01)
        assert state(pid) == "T"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    # Reparented to init (which reaps it) once its parent is gone; a zombie counts as dead.
    try:
        return state(pid) != "Z"
    except FileNotFoundError:
        return False
