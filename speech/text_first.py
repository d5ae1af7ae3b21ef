"""Text first: stop the transcription processes while text turns are being handled.

A voice note costs seconds of CPU and nobody notices a second more; a text reply costs
tens of milliseconds and its customer notices every one. The children already run in
``SCHED_IDLE`` (see :mod:`speech.pool`), which keeps them off a core that text work
wants, but a running child still fills the shared caches and memory bandwidth with
Whisper's weights, and on two cores that slowed text turns measurably. So while this
process handles a text turn the children are stopped (``SIGSTOP``), and when no text turn
is in flight they go on (``SIGCONT``) where they were.

Steady text traffic must not starve voice notes: after ``max_pause_s`` stopped, the
children run for ``min_run_s`` whatever text is in flight, then may be stopped again.

Only this process's children and this process's text turns are seen: with several
gateway worker processes, each one pauses the transcriptions it started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class TextFirst:
    """Counts text turns in flight and stops or continues the transcription processes.

    Every method runs on the event loop's thread; ``pids`` is called there too.

    Args:
        pids: the process ids to stop and continue (the pool's children right now).
        max_pause_s: the longest stretch the children stay stopped.
        min_run_s: how long they then run before they may be stopped again.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], *, max_pause_s: float, min_run_s: float) -> None:
        self._pids = pids
        self.max_pause_s = max_pause_s
        self.min_run_s = min_run_s
        self._turns = 0
        self._stopped: set[int] = set()
        self._running_until = 0.0  # loop time: a forced run lasts until then
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def paused(self) -> bool:
        """Whether the children are stopped right now."""
        return bool(self._stopped)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the children stopped for the duration of one text turn."""
        self._turns += 1
        if self._turns == 1:
            self._pause()
        try:
            yield
        finally:
            self._turns -= 1
            if self._turns == 0:
                self._resume()

    def close(self) -> None:
        """Let the children go on for good (before the pool shuts down and waits for them)."""
        self._closed = True
        self._resume()

    def _pause(self) -> None:
        if self._closed or self._stopped:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._running_until:
            return  # a forced run: the timer at its end pauses again if text still waits
        for pid in self._pids():
            if _signal(pid, signal.SIGSTOP):
                self._stopped.add(pid)
        if self._stopped:
            self._set_timer(loop, self.max_pause_s, self._force_run)

    def _resume(self) -> None:
        stopped, self._stopped = self._stopped, set()
        for pid in stopped:
            _signal(pid, signal.SIGCONT)
        if stopped and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _force_run(self) -> None:
        self._timer = None
        log.debug("speech: text traffic held transcription for %.1f s; letting it run %.1f s", self.max_pause_s, self.min_run_s)
        self._resume()
        loop = asyncio.get_running_loop()
        self._running_until = loop.time() + self.min_run_s
        self._set_timer(loop, self.min_run_s, self._run_over)

    def _run_over(self) -> None:
        self._timer = None
        self._running_until = 0.0  # (asyncio may fire a timer a clock tick early)
        if self._turns > 0:
            self._pause()

    def _set_timer(self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, callback)


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False  # it died (the pool notices and replaces it)
    except PermissionError as exc:  # not ours any more (pid reused): leave it alone
        log.warning("speech: cannot signal process %d: %s", pid, exc)
        return False
    return True
