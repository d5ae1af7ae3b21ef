"""NluClient against fake Rasa servers on loopback: round robin, breaker, timeouts."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from bot.nlu.client import FALLBACK_INTENT, BreakerState, NluClient, ParseResult
from bot.nlu.errors import NluUnavailable
from tests.nlu.conftest import FakeClock, FakeRasa

StartFake = Callable[..., Awaitable[FakeRasa]]


async def test_round_robin_alternates_between_two_urls(
    http: aiohttp.ClientSession, fake_rasa: StartFake
) -> None:
    a, b = await fake_rasa("a"), await fake_rasa("b")
    client = NluClient(http, [a.url, b.url])
    served_by = [(await client.parse(f"msg {i}")).entity("server") for i in range(10)]
    assert served_by == ["a", "b"] * 5
    assert len(a.hits) == len(b.hits) == 5


async def test_parse_result_shape(http: aiohttp.ClientSession, fake_rasa: StartFake) -> None:
    a = await fake_rasa("a")
    result = await NluClient(http, [a.url + "/"]).parse("你好")
    assert result == ParseResult(
        text="你好",
        intent="greet",
        confidence=0.9,
        entities=result.entities,
        ranking=(("greet", 0.9), ("goodbye", 0.1)),
    )
    assert result.entity("server") == "a"
    assert result.entity("device_model") is None


async def test_refused_url_falls_over_then_circuit_opens(
    http: aiohttp.ClientSession, fake_rasa: StartFake, refused_url: str, clock: FakeClock
) -> None:
    good = await fake_rasa("good")
    client = NluClient(http, [refused_url, good.url], failure_threshold=2, reset_after_s=10, clock=clock)
    for i in range(6):
        assert (await client.parse(f"m{i}")).entity("server") == "good"
    assert client.breaker_states()[refused_url] is BreakerState.OPEN
    assert len(good.hits) == 6

    # Past reset_after_s one trial goes to the refused URL, fails, and re-opens it.
    clock.now += 11
    assert (await client.parse("after reset")).entity("server") == "good"
    assert client.breaker_states()[refused_url] is BreakerState.OPEN


async def test_slow_server_times_out_and_is_skipped(
    http: aiohttp.ClientSession, fake_rasa: StartFake, clock: FakeClock
) -> None:
    slow = await fake_rasa("slow", delay_s=5.0)
    fast = await fake_rasa("fast")
    client = NluClient(http, [slow.url, fast.url], timeout_s=0.3, failure_threshold=1, clock=clock)
    started = time.monotonic()
    assert (await client.parse("first")).entity("server") == "fast"
    assert time.monotonic() - started < 2.0  # bounded by the timeout, not the 5 s delay
    assert client.breaker_states()[slow.url] is BreakerState.OPEN

    # While open, the slow URL costs nothing: no request reaches it.
    started = time.monotonic()
    for i in range(4):
        assert (await client.parse(f"m{i}")).entity("server") == "fast"
    assert time.monotonic() - started < 1.0
    assert slow.hits == ["first"]


async def test_half_open_trial_closes_circuit_when_url_recovers(
    http: aiohttp.ClientSession, fake_rasa: StartFake, clock: FakeClock
) -> None:
    flaky = await fake_rasa("flaky", status=503)
    client = NluClient(http, [flaky.url], failure_threshold=2, reset_after_s=5, clock=clock)
    for _ in range(2):
        with pytest.raises(NluUnavailable):
            await client.parse("x")
    assert client.breaker_states()[flaky.url] is BreakerState.OPEN
    with pytest.raises(NluUnavailable, match="circuit open"):
        await client.parse("skipped")
    assert len(flaky.hits) == 2  # the open circuit sent nothing

    flaky.status = 200
    clock.now += 5
    assert (await client.parse("back")).entity("server") == "flaky"
    assert client.breaker_states()[flaky.url] is BreakerState.CLOSED


async def test_all_down_raises_unavailable_with_reasons(
    http: aiohttp.ClientSession, refused_url: str, fake_rasa: StartFake
) -> None:
    slow = await fake_rasa("slow", delay_s=5.0)
    client = NluClient(http, [refused_url, slow.url], timeout_s=0.3)
    with pytest.raises(NluUnavailable) as info:
        await client.parse("anyone?")
    reasons = dict(info.value.failures)
    assert set(reasons) == {refused_url, slow.url}
    assert "ClientConnectorError" in reasons[refused_url]
    assert "timeout" in reasons[slow.url]
    assert info.value.code == "nlu_unavailable"


async def test_garbage_answer_counts_as_failure(
    http: aiohttp.ClientSession, fake_rasa: StartFake
) -> None:
    bad = await fake_rasa("bad", body='{"not": "rasa"}')
    good = await fake_rasa("good")
    client = NluClient(http, [bad.url, good.url])
    assert (await client.parse("x")).entity("server") == "good"
    assert client._breakers[bad.url].failures == 1


async def test_missing_intent_becomes_fallback(
    http: aiohttp.ClientSession, fake_rasa: StartFake
) -> None:
    fake = await fake_rasa("f", body='{"text": "...", "intent": {"name": null, "confidence": 0}}')
    result = await NluClient(http, [fake.url]).parse("...")
    assert result.intent == FALLBACK_INTENT and result.entities == ()


async def test_empty_text_is_rejected_without_a_request(
    http: aiohttp.ClientSession, fake_rasa: StartFake
) -> None:
    fake = await fake_rasa("f")
    with pytest.raises(ValueError):
        await NluClient(http, [fake.url]).parse("   ")
    assert fake.hits == []


def test_constructor_validates() -> None:
    session = object()
    with pytest.raises(ValueError):
        NluClient(session, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NluClient(session, "http://127.0.0.1:5005")  # type: ignore[arg-type]


def test_a_missing_or_malformed_sentence_vector_is_left_out() -> None:
    """The vector is an optimisation: a parse without it, or with junk, still parses."""
    base = {"text": "你好", "intent": {"name": "greet", "confidence": 0.9}}
    for junk in (None, "x", {"encoder": 3}, {"encoder": "e", "float32_base64": "not base64!"}):
        result = ParseResult.from_rasa({**base, "kefu_sentence_vector": junk})
        assert (result.intent, result.vector_encoder, result.vector) == ("greet", "", b"")
    good = ParseResult.from_rasa({**base, "kefu_sentence_vector": {"encoder": "e", "float32_base64": "AACAPw=="}})
    assert (good.vector_encoder, good.vector) == ("e", b"\x00\x00\x80?")
