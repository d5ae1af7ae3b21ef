"""The async face of speech recognition: bounded workers off the event loop.

A voice note takes seconds of CPU; text traffic on the same event loop must not notice.
Every transcription (decoding included) runs in a worker thread:

* ``faster``: threads of this process share one CTranslate2 model, loaded once on first
  use. CTranslate2 releases the GIL while it computes, so the loop keeps running.
* ``openai``: each worker thread hands the job to its own child process (spawned, one
  model each), because openai-whisper's decoder is Python-heavy (it would hold the GIL)
  and mutates the model with cache hooks on every call (unsafe to share between threads).

Back-pressure: at most ``workers`` transcriptions run and at most ``max_queue`` wait.
One more raises :class:`~speech.errors.SpeechBusy` at once instead of waiting, so the
caller (a stream consumer) can leave the message unacknowledged and retry later, rather
than pile up bytes in memory while the customer waits anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import functools
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from speech.decode import AudioLimits, decode_audio
from speech.engines import Engine, engine_class, load_engine
from speech.errors import EngineError, SpeechBusy, SpeechClosed
from speech.settings import SpeechSettings
from speech.text_first import TextFirst

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a customer said in one voice note.

    Attributes:
        text: the transcript; Mandarin in simplified characters.
        language: ``"zh"`` or ``"en"``.
        confidence: 0..1; below ``SpeechSettings.low_confidence`` read it back first.
        duration_s: length of the audio.
        elapsed_s: processing time (decoding and recognition), not counting queueing.
        engine: ``"faster"`` or ``"openai"``.
    """

    text: str
    language: str
    confidence: float
    duration_s: float
    elapsed_s: float
    engine: str


class Transcriber(Protocol):
    """Turns voice notes into text without blocking the caller's event loop."""

    async def transcribe(self, audio: bytes, *, format: str) -> Transcript:
        """Transcribe one voice note.

        Args:
            audio: the file's bytes as the platform delivered them.
            format: ``"amr"``, ``"silk"``, ``"mp3"``, ``"m4a"``, ``"ogg"``, ``"opus"``,
                ``"wav"``, or ``""`` to sniff it from the bytes.

        Raises:
            AudioRejected: empty, corrupt, too large, too long or unsupported audio.
            SpeechBusy: all workers busy and the queue full; retry later.
            ModelNotInstalled: the model files are missing.
        """
        ...

    async def close(self) -> None:
        """Stop accepting work, let running jobs finish and release the workers."""
        ...

    def text_turn(self) -> contextlib.AbstractContextManager[None]:
        """A context for handling one text turn; transcription may yield to it meanwhile."""
        ...


def run_job(engine: Engine, audio: bytes, fmt: str, limits: AudioLimits) -> Transcript:
    """Decode and transcribe one note, synchronously, in whatever worker calls it."""
    started = time.perf_counter()
    decoded = decode_audio(audio, format=fmt, limits=limits)
    heard = engine.recognize(decoded.samples)
    return Transcript(
        text=heard.text,
        language=heard.language,
        confidence=heard.confidence,
        duration_s=round(decoded.duration_s, 3),
        elapsed_s=round(time.perf_counter() - started, 3),
        engine=engine.name,
    )


def _limits(settings: SpeechSettings) -> AudioLimits:
    return AudioLimits(max_bytes=settings.max_bytes, max_duration_s=settings.max_duration_s)


class _SharedEngine:
    """Loads the engine once, on first use, in a worker thread (never on the loop)."""

    def __init__(self, settings: SpeechSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._engine: Engine | None = None

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = load_engine(self._settings)
            return self._engine

    def __call__(self, audio: bytes, fmt: str) -> Transcript:
        return run_job(self.get(), audio, fmt, _limits(self._settings))


@functools.cache
def _process_engine(settings: SpeechSettings) -> Engine:
    """The child process's engine, loaded by the first job (or warm-up) it runs."""
    return load_engine(settings)


def _process_job(settings: SpeechSettings, audio: bytes, fmt: str) -> Transcript:
    return run_job(_process_engine(settings), audio, fmt, _limits(settings))


def _process_warm_up(settings: SpeechSettings) -> None:
    _process_engine(settings)


def _child_init(nice: int, idle_class: bool = False) -> None:
    _die_with_parent()
    _lower_priority(nice, idle_class)


def _die_with_parent() -> None:
    # A child may be stopped (TextFirst) when the gateway is killed outright; stopped, it
    # would never notice its pipe close and would keep its model in memory for good.
    # PR_SET_PDEATHSIG delivers SIGKILL, which ends even a stopped process.
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:  # 9 = SIGKILL
            log.warning("speech: PR_SET_PDEATHSIG refused (errno %d)", ctypes.get_errno())
    except OSError as exc:
        log.warning("speech: PR_SET_PDEATHSIG unavailable (%s)", exc)


def _lower_priority(nice: int, idle_class: bool = False) -> None:
    # Transcription is minutes-tolerant, text replies are not: let the scheduler prefer
    # the gateway, NLU and the stores when the cores are busy. Set in the child's main
    # thread before the model exists, so the engine's threads inherit it.
    if nice:
        os.nice(nice)
    if idle_class and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:  # e.g. a seccomp profile that forbids it: niceness remains
            log.warning("speech: SCHED_IDLE refused (%s); running at niceness %d", exc, nice)


class _ProcessEngine:
    """Forwards jobs from a worker thread to a child process that owns a model."""

    def __init__(self, settings: SpeechSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None
        self._shut = False

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # Created on first use in a worker thread: building the pool starts
        # multiprocessing's resource tracker and writes to pipes, blocking calls that
        # must not run on the event loop.
        with self._lock:
            if self._shut:
                raise SpeechClosed("the transcriber is closed")
            if self._processes is None:
                # spawn, not fork: the parent has threads (and maybe a loaded model)
                # that a forked child would inherit in an undefined state.
                self._processes = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self._settings.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_init,
                    initargs=(self._settings.nice, self._settings.idle_class),
                )
            return self._processes

    def __call__(self, audio: bytes, fmt: str) -> Transcript:
        pool = self._pool()
        try:
            return pool.submit(_process_job, self._settings, audio, fmt).result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            # A child died (killed for memory, most likely). Drop the pool so the next
            # note starts fresh processes instead of failing forever.
            with self._lock:
                if self._processes is pool:
                    self._processes = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise EngineError("the speech worker process died; the next note starts a new one") from exc

    def pids(self) -> list[int]:
        """The children's process ids right now (none before the first job)."""
        with self._lock:
            pool = self._processes
        # ProcessPoolExecutor keeps no public list of its children; ``_processes`` (pid ->
        # Process) has been there since Python 3.2. Without it, nothing is paused.
        children = getattr(pool, "_processes", None) or {}
        return list(children)

    def warm_up(self) -> None:
        """Best effort: each of ``workers`` jobs lands on an idle process, normally its own."""
        pool = self._pool()
        futures = [pool.submit(_process_warm_up, self._settings) for _ in range(self._settings.workers)]
        for future in futures:
            future.result()

    def shutdown(self) -> None:
        with self._lock:
            self._shut = True
            processes, self._processes = self._processes, None
        if processes is not None:
            processes.shutdown(wait=True, cancel_futures=True)


class PooledTranscriber:
    """The :class:`Transcriber` Kefu uses: a bounded pool of workers behind an async API.

    Build it with :func:`build_transcriber`; the model loads lazily on the first note, or
    at :meth:`warm_up` (call it at startup so the first customer does not wait for it).
    """

    def __init__(self, settings: SpeechSettings) -> None:
        self.settings = settings
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="kefu-speech"
        )
        self._job: Callable[[bytes, str], Transcript]
        self._processes: _ProcessEngine | None = None
        if engine_class(settings).thread_safe and settings.isolation == "thread":
            self._job = _SharedEngine(settings)
        else:
            self._processes = _ProcessEngine(settings)
            self._job = self._processes
        self._text_first: TextFirst | None = None
        if self._processes is not None and settings.text_first:
            self._text_first = TextFirst(
                self._processes.pids, max_pause_s=settings.max_pause_s, min_run_s=settings.min_run_s
            )
        self._capacity = settings.workers + settings.max_queue
        self._in_flight = 0  # touched on the loop thread only
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """Transcriptions running or waiting for a worker."""
        return self._in_flight

    def text_turn(self) -> contextlib.AbstractContextManager[None]:
        """Wrap the handling of a text turn: transcription pauses meanwhile (see :mod:`speech.text_first`).

        Call it on the event loop's thread. A no-op with thread isolation or
        ``text_first: false``.
        """
        if self._text_first is None:  # (after close() the gate itself never pauses)
            return contextlib.nullcontext()
        return self._text_first.turn()

    async def warm_up(self) -> None:
        """Load the model now, in the workers, rather than on the first voice note."""
        loop = asyncio.get_running_loop()
        if self._processes is not None:
            await loop.run_in_executor(self._threads, self._processes.warm_up)
        elif isinstance(self._job, _SharedEngine):
            await loop.run_in_executor(self._threads, self._job.get)

    async def transcribe(self, audio: bytes, *, format: str) -> Transcript:
        """See :meth:`Transcriber.transcribe`."""
        if self.closed:
            raise SpeechClosed("the transcriber is closed")
        if self._in_flight >= self._capacity:
            raise SpeechBusy(
                f"{self._in_flight} voice notes are already being transcribed or queued "
                f"(limit {self._capacity}); try again later"
            )
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        future = self._threads.submit(self._job, audio, format)

        def release(_: concurrent.futures.Future[Transcript]) -> None:
            # Runs when the job really ends: a cancelled caller does not stop a job that
            # already started, so its slot is held until the worker is free again.
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop is already closed; nobody counts any more
                pass

        future.add_done_callback(release)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            # (a method call: mypy would keep `self.closed` narrowed to False from above)
            if future.cancelled() and self._is_closed() and not (task and task.cancelling()):
                # Still queued when close() cancelled it: not the caller's cancellation.
                raise SpeechClosed("the transcriber closed before this note was transcribed") from None
            raise

    def _is_closed(self) -> bool:
        return self._closed

    def _release(self) -> None:
        self._in_flight -= 1

    async def close(self) -> None:
        """See :meth:`Transcriber.close`."""
        if self._closed:
            return
        self._closed = True
        if self._text_first is not None:
            self._text_first.close()  # a stopped child would never finish its job
        loop = asyncio.get_running_loop()
        # shutdown(wait=True) blocks until running jobs end: never on the loop thread.
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown()


def build_transcriber(settings: SpeechSettings) -> PooledTranscriber:
    """The transcriber for ``settings``; cheap (no model is loaded until needed)."""
    return PooledTranscriber(settings)
