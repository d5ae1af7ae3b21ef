"""Whether NLU can parse now, learnt by asking it, and how long a message may wait for it.

A freshly started Rasa answers ``/status`` about 40 s after launch, and its first parse
then takes over 2 s (the model's graph is traced on first use). Routing traffic to it
before that turns every early message into a timeout. So NLU counts as ready only after
a warm-up parse succeeded on at least one server; until then, and again whenever a parse
finds no server, messages that need understanding wait for readiness instead of failing.

How long the wait is expected to be decides what the customer hears: within
``quiet_wait_s`` of NLU going away (a start, a restart) nothing, since the answer
follows shortly; past it, one honest holding reply; past ``max_wait_s`` for one message,
a person takes it over. The waiting itself is an :class:`asyncio.Event`: every waiting
message is released the moment a warm-up succeeds, in the order it started waiting,
whatever other traffic does.

Before the first model exists (a first run training in the background, or a Rasa
server that answers ``/status`` without a model) there is nothing worth waiting for:
NLU is *absent*, messages are not held (the keyword layer answers what it can, see
:class:`bot.routing.SkillRouter`), and the progress of the training is kept for
``/readyz`` and the log. Once a model is there, NLU warms up as after any start.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.nlu.client import NluClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """How far a background training is: its stage, and during the epochs how many are
    done of how many, with tqdm's estimate of the seconds left (``None``: not known)."""

    stage: str  # starting, installing, preparing, epochs, failed
    done: int = 0
    total: int = 0
    left_s: int | None = None

    def __str__(self) -> str:
        if self.stage != "epochs":
            return {"installing": "installing Rasa's environment (first run, a few minutes)",
                    "preparing": "preparing the training data", "failed": "the training failed (see the log)"}.get(
                self.stage, self.stage)
        left = "an unknown time" if self.left_s is None else (
            f"{self.left_s // 60} min {self.left_s % 60} s" if self.left_s >= 60 else f"{self.left_s} s")
        return f"epoch {self.done}/{self.total}, about {left} left"


class Wait(str, enum.Enum):
    """What a message that needs NLU should do now."""

    READY = "ready"  # parse it
    ABSENT = "absent"  # no model yet: do without NLU, do not wait
    QUIET = "quiet"  # NLU is expected shortly: wait without a word
    HOLDING = "holding"  # the wait is long: tell the customer, keep waiting
    GIVE_UP = "give_up"  # waited too long: hand it to a person


class NluReadiness:
    """Tracks NLU readiness with warm-up parses and tells waiting messages what to do.

    Args:
        client: the NLU client whose servers are probed and warmed.
        quiet_wait_s: how long after NLU went away a message waits silently.
        max_wait_s: how long one message waits in all before a person takes it.
        probe_interval_s: pause between warm-up attempts while not ready.
        warm_up_timeout_s: allowed time for one warm-up parse (the first is slow).
        clock: monotonic clock.
        training: a model is being trained here: NLU is absent until :meth:`expect`.
    """

    def __init__(
        self,
        client: NluClient,
        *,
        quiet_wait_s: float = 60.0,
        max_wait_s: float = 600.0,
        probe_interval_s: float = 0.5,
        warm_up_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        training: bool = False,
    ) -> None:
        self.client = client
        self.quiet_wait_s = quiet_wait_s
        self.max_wait_s = max_wait_s
        self.probe_interval_s = probe_interval_s
        self.warm_up_timeout_s = warm_up_timeout_s
        self._clock = clock
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self.down_since = clock()
        self._training = training
        self._no_model = False  # a server answers, but serves no model
        self._expected = asyncio.Event()
        #: What the training is doing now ("epoch 12/60, about 1 min left"); None when none runs.
        self.progress: TrainingProgress | None = TrainingProgress("starting") if training else None

    @property
    def absent(self) -> bool:
        """No model yet: messages do without NLU instead of waiting for it."""
        return self._training or self._no_model

    def expect(self) -> None:
        """The trained model is being served: warm it up and wait for it like after a start."""
        self._training = False
        self.progress = None
        self.down_since = self._clock()
        self._expected.set()

    def now(self) -> float:
        return self._clock()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def lost(self) -> None:
        """A parse found no server: wait for a fresh warm-up before parsing again."""
        if self._ready.is_set():
            log.warning("nlu: no server answered; messages needing NLU wait until it is back")
            self._ready.clear()
            self.down_since = self._clock()
        self._lost.set()

    def not_coming_soon(self) -> None:
        """NLU could not be started: waiting messages are told at once, not after
        ``quiet_wait_s`` (it still counts as ready whenever a warm-up succeeds)."""
        self.down_since = min(self.down_since, self._clock() - self.quiet_wait_s)

    def decide(self, waiting_since: float) -> Wait:
        """What a message that has waited since ``waiting_since`` should do now."""
        if self._ready.is_set():
            return Wait.READY
        if self.absent:
            return Wait.ABSENT
        now = self._clock()
        if now - waiting_since >= self.max_wait_s:
            return Wait.GIVE_UP
        if now - self.down_since >= self.quiet_wait_s:
            return Wait.HOLDING
        return Wait.QUIET

    def next_change_in(self, waiting_since: float) -> float:
        """Seconds until :meth:`decide` would change its answer without NLU coming back."""
        now = self._clock()
        ahead = [t for t in (self.down_since + self.quiet_wait_s - now, waiting_since + self.max_wait_s - now) if t > 0]
        return min(ahead) if ahead else 0.0

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for readiness; whether NLU is ready."""
        if self._ready.is_set():
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Warm NLU up until it parses, then sleep until a parse loses it; repeat."""
        while not stop.is_set():
            if self._training:
                self._expected.clear()
                await _first(self._expected, stop)
                continue
            if not self._ready.is_set():
                if await self.client.warm_up(self.warm_up_timeout_s):
                    log.info("nlu: ready after %.1f s", self._clock() - self.down_since)
                    self._no_model = False
                    self._lost.clear()
                    self._ready.set()
                    continue
                self._notice_model(await self.client.serving_no_model())
                await _sleep_or_stop(stop, self.probe_interval_s)
                continue
            await _first(self._lost, stop)

    def _notice_model(self, no_model: bool) -> None:
        if no_model and not self._no_model:
            log.warning("nlu: the server has no model; the keyword layer answers until one is loaded")
        elif not no_model and self._no_model:
            log.info("nlu: the server has a model now; warming it up")
            self.down_since = self._clock()
        self._no_model = no_model


async def _first(event: asyncio.Event, stop: asyncio.Event) -> None:
    """Wait until ``event`` or ``stop`` is set."""
    waited = asyncio.create_task(event.wait())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waited.cancel()
        stopped.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
