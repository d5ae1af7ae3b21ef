"""The gateway's async client for Rasa NLU servers (``POST /model/parse``).

One Rasa process is CPU-bound at roughly 70 parses/s, so the gateway scales out by
running several and spreading requests over them in turn. Each URL has its own
circuit breaker: after ``failure_threshold`` consecutive failures it is skipped for
``reset_after_s`` seconds, then one trial request decides whether it is back. When no
URL answers, :class:`NluUnavailable` tells the caller to hold the message and retry,
instead of guessing an intent.

Rasa HTTP API: https://rasa.com/docs/rasa/pages/http-api#operation/parseModelMessage
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.nlu.errors import NluError, NluUnavailable
from bot.nlu.settings import NluSettings

__all__ = [
    "FALLBACK_INTENT",
    "UNDERSTANDING_UNAVAILABLE",
    "Entity",
    "NluClient",
    "NluError",
    "NluSettings",
    "NluUnavailable",
    "ParseResult",
]

log = logging.getLogger(__name__)

#: The intent Rasa's FallbackClassifier reports when no intent is confident enough.
#: It is not a product intent: treat it like ``out_of_scope`` (ask to rephrase).
FALLBACK_INTENT = "nlu_fallback"

#: Not Rasa's: the worker's verdict on a message that waited too long for NLU. The
#: hand-off skill takes it to a person and says why.
UNDERSTANDING_UNAVAILABLE = "understanding_unavailable"

#: What a warm-up parse asks: any short text runs the whole pipeline once.
WARM_UP_TEXT = "你好"


@dataclass(frozen=True, slots=True)
class Entity:
    """One extracted entity; ``value`` is already mapped to its canonical synonym."""

    entity: str
    value: str
    start: int
    end: int
    confidence: float | None


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What Rasa understood of one message.

    ``ranking`` lists ``(intent, confidence)`` best first. When no intent was confident
    enough, ``intent`` is ``nlu_fallback`` and it also heads the ranking, followed by
    the real intents in Rasa's order: ``ranking[1]`` is then the best guess.
    """

    text: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...]
    ranking: tuple[tuple[str, float], ...]
    # The sentence vector Kefu's featurizer computed for ``text`` and the weights that
    # made it ("" / b"" when the model sends none): knowledge search reuses it.
    vector_encoder: str = ""
    vector: bytes = b""

    def entity(self, name: str) -> str | None:
        """The value of the first entity called ``name``, or ``None``."""
        for ent in self.entities:
            if ent.entity == name:
                return ent.value
        return None

    @classmethod
    def from_rasa(cls, payload: Mapping[str, Any]) -> ParseResult:
        """Build from Rasa's ``/model/parse`` JSON.

        Raises:
            ValueError: the payload does not have Rasa's shape.
        """
        try:
            intent = payload.get("intent") or {}
            entities = tuple(
                Entity(
                    entity=str(e["entity"]),
                    value=str(e["value"]),
                    start=int(e["start"]),
                    end=int(e["end"]),
                    # DIET reports confidence_entity; regex/lookup extractors report none.
                    confidence=(
                        float(e["confidence_entity"])
                        if e.get("confidence_entity") is not None
                        else None
                    ),
                )
                for e in payload.get("entities") or ()
            )
            ranking = tuple(
                (str(r["name"]), float(r["confidence"]))
                for r in payload.get("intent_ranking") or ()
            )
            encoder, vector = _sentence_vector(payload.get(SENTENCE_VECTOR))
            return cls(
                text=str(payload["text"]),
                # Rasa answers intent name None for text with no tokens at all.
                intent=str(intent.get("name") or FALLBACK_INTENT),
                confidence=float(intent.get("confidence") or 0.0),
                entities=entities,
                ranking=ranking,
                vector_encoder=encoder,
                vector=vector,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a Rasa parse result: {exc!r}") from exc


#: Set by nlu_data/components/kefu_rasa/sentence_encoder_featurizer.py.
SENTENCE_VECTOR = "kefu_sentence_vector"


def _sentence_vector(raw: Any) -> tuple[str, bytes]:
    """The featurizer's vector, or ("", b"") when absent or malformed: it is an
    optimisation, and the knowledge search encodes the text itself without it."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("encoder"), str):
        return "", b""
    try:
        return raw["encoder"], base64.b64decode(str(raw.get("float32_base64", "")), validate=True)
    except binascii.Error:
        return "", b""


class BreakerState(str, enum.Enum):
    """Circuit breaker state of one URL."""

    CLOSED = "closed"  # healthy: requests go through
    OPEN = "open"  # failing: skipped until reset_after_s has passed
    HALF_OPEN = "half_open"  # one trial request in flight decides


class _Breaker:
    """Consecutive-failure circuit breaker. Lives on one event loop: no locking."""

    __slots__ = ("_clock", "_opened_at", "_reset_after_s", "_threshold", "failures", "state")

    def __init__(self, threshold: int, reset_after_s: float, clock: Callable[[], float]) -> None:
        self._threshold = threshold
        self._reset_after_s = reset_after_s
        self._clock = clock
        self._opened_at = 0.0
        self.failures = 0
        self.state = BreakerState.CLOSED

    def try_acquire(self) -> bool:
        """Whether a request may go to this URL now (moves OPEN to HALF_OPEN)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and (
            self._clock() - self._opened_at >= self._reset_after_s
        ):
            # Let exactly one request probe the URL; others keep skipping it.
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.state = BreakerState.CLOSED

    def trip(self) -> None:
        """Skip the URL for ``reset_after_s`` (it is up but not yet warm)."""
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()

    def failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self._threshold:
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()


class NluClient:
    """Parses text through one or more Rasa servers, in turn, with circuit breakers.

    Args:
        session: the application's shared session; the client never closes it.
        urls: Rasa base URLs, e.g. ``http://127.0.0.1:5005``.
        timeout_s: total time allowed for one request to one URL.
        failure_threshold: consecutive failures that open a URL's circuit.
        reset_after_s: how long an open circuit skips its URL before a trial.
        clock: monotonic clock, replaceable for tests of the breaker timing.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        timeout_s: float = 2.0,
        failure_threshold: int = 3,
        reset_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(urls, str):
            raise TypeError("urls must be a sequence of URLs, not one string")
        if not urls:
            raise ValueError("NluClient needs at least one Rasa URL")
        if timeout_s <= 0 or reset_after_s <= 0 or failure_threshold < 1:
            raise ValueError("timeout_s, reset_after_s must be > 0, failure_threshold >= 1")
        self._session = session
        self._urls = tuple(u.rstrip("/") for u in urls)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._breakers = {u: _Breaker(failure_threshold, reset_after_s, clock) for u in self._urls}
        self._turn = itertools.cycle(range(len(self._urls)))

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: NluSettings) -> NluClient:
        """A client configured from the ``nlu:`` settings section."""
        return cls(
            session,
            settings.urls,
            timeout_s=settings.timeout_s,
            failure_threshold=settings.failure_threshold,
            reset_after_s=settings.reset_after_s,
        )

    @property
    def urls(self) -> tuple[str, ...]:
        """The configured Rasa URLs, in round-robin order."""
        return self._urls

    def breaker_states(self) -> dict[str, BreakerState]:
        """Each URL's circuit state, for health pages and logs."""
        return {u: b.state for u, b in self._breakers.items()}

    async def parse(self, text: str) -> ParseResult:
        """Classify ``text`` and extract its entities.

        Starts at the next URL in turn and falls over to the following ones when a
        URL fails (refused, timed out, non-200, not Rasa's JSON) or its circuit is open.

        Raises:
            ValueError: ``text`` is empty or only whitespace (nothing to classify).
            NluUnavailable: no URL gave an answer.
        """
        if not text.strip():
            raise ValueError("cannot parse empty text")
        start = next(self._turn)
        failures: list[tuple[str, str]] = []
        for i in range(len(self._urls)):
            url = self._urls[(start + i) % len(self._urls)]
            breaker = self._breakers[url]
            if not breaker.try_acquire():
                failures.append((url, "circuit open"))
                continue
            try:
                result = await self._post(url, text)
            except asyncio.CancelledError:
                # The caller gave up, which says nothing about the URL's health; a
                # half-open trial must not stay in flight forever though.
                if breaker.state is BreakerState.HALF_OPEN:
                    breaker.state = BreakerState.OPEN
                raise
            except _UrlFailed as exc:
                breaker.failure()
                failures.append((url, exc.reason))
                log.warning("nlu: %s failed (%s), circuit %s", url, exc.reason, breaker.state.value)
                continue
            breaker.success()
            return result
        summary = "; ".join(f"{u}: {r}" for u, r in failures)
        raise NluUnavailable(f"no Rasa server answered ({summary})", tuple(failures))

    async def warm_up(self, timeout_s: float, text: str = WARM_UP_TEXT) -> bool:
        """Parse once on every URL with a generous timeout; whether any answered.

        A freshly loaded Rasa model takes seconds over its first parse. URLs that
        answered are put back into rotation at once; the others are skipped for
        ``reset_after_s``, so that no customer's parse pays for their warm-up.
        """
        timeout = aiohttp.ClientTimeout(total=timeout_s)

        async def one(url: str) -> bool:
            try:
                await self._post(url, text, timeout)
            except _UrlFailed as exc:
                log.debug("nlu: warm-up of %s failed (%s)", url, exc.reason)
                self._breakers[url].trip()
                return False
            self._breakers[url].success()
            return True

        return any(await asyncio.gather(*(one(u) for u in self._urls)))

    async def serving_no_model(self, timeout_s: float = 2.0) -> bool:
        """Whether a server answers ``GET /status`` but has no model loaded (a Rasa
        started before any model was trained); ``False`` while none answers at all."""

        async def one(url: str) -> bool:
            try:
                async with self._session.get(f"{url}/status", timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                    body = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                return False
            return isinstance(body, dict) and not body.get("model_file")

        answers = await asyncio.gather(*(one(u) for u in self._urls))
        return any(answers)

    async def _post(self, url: str, text: str, timeout: aiohttp.ClientTimeout | None = None) -> ParseResult:
        try:
            async with self._session.post(
                f"{url}/model/parse", json={"text": text}, timeout=timeout or self._timeout
            ) as resp:
                if resp.status != 200:
                    raise _UrlFailed(f"HTTP {resp.status}")
                payload = await resp.json(content_type=None)
        except asyncio.TimeoutError:
            raise _UrlFailed(f"timeout after {(timeout or self._timeout).total}s") from None
        except aiohttp.ClientError as exc:
            raise _UrlFailed(f"{type(exc).__name__}: {exc}") from None
        except json.JSONDecodeError:
            raise _UrlFailed("response is not JSON") from None
        if not isinstance(payload, dict):
            raise _UrlFailed("response is not a JSON object")
        try:
            return ParseResult.from_rasa(payload)
        except ValueError as exc:
            raise _UrlFailed(str(exc)) from None


class _UrlFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
