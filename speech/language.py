"""Language policy, decoding prompts, confidence and script normalisation, shared by engines."""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED = ("zh", "en")

# Whisper writes Mandarin in traditional or simplified characters almost at random
# unless the prompt shows it simplified text first (opencc makes sure afterwards).
ZH_PROMPT = "以下是普通话的句子。"
#: On shorter notes Whisper copies its prompt into the transcript ("以下是普通话的句子",
#: "产品型号：XK-8800" heard in a 1 s "你好"), so they are decoded without one.
PROMPT_MIN_S = 3.0
# A segment this similar to a sentence of the prompt is the prompt, not the customer.
_ECHO_RATIO = 0.6
_NOT_WORD = re.compile(r"[\W_]+")


def choose_language(policy: str, probabilities: Mapping[str, float]) -> str:
    """Pick the transcript language under ``policy`` from whisper's language scores.

    ``auto-zh-en`` compares only Mandarin and English: whisper's open detection labels
    short or accented Mandarin as Thai, Vietnamese or Cantonese, and Kefu serves neither.
    A fixed policy (``"zh"``, ``"en"``) ignores the scores.
    """
    if policy in SUPPORTED:
        return policy
    return max(SUPPORTED, key=lambda lang: probabilities.get(lang, 0.0))


def needs_detection(policy: str) -> bool:
    return policy not in SUPPORTED


def initial_prompt(language: str, vocabulary: Iterable[str], *, duration_s: float | None = None) -> str:
    """The decoding prompt: the script cue for Mandarin plus the product names to expect;
    none for notes shorter than :data:`PROMPT_MIN_S`."""
    if duration_s is not None and duration_s < PROMPT_MIN_S:
        return ""
    names = [v.strip() for v in vocabulary if v.strip()]
    if language == "zh":
        return ZH_PROMPT + (f"产品型号：{'、'.join(names)}。" if names else "")
    return f"Product names: {', '.join(names)}." if names else ""


def _plain(text: str) -> str:
    return _NOT_WORD.sub("", text).lower()


def without_prompt_echo(texts: Sequence[str], prompt: str, vocabulary: Iterable[str]) -> list[str]:
    """The segment texts that are not Whisper copying its prompt.

    A segment goes when, with the product names taken out, it is (nearly) one of the
    prompt's sentences ("以下是普通的句子", "产品号：XK-8800", "Product names: ..."), when
    it is the whole list of names as the prompt gives it, or when it is punctuation only.
    A customer's own sentence that mentions a product name stays.
    """
    names = sorted((_plain(v) for v in vocabulary if _plain(v)), key=len, reverse=True)

    def unnamed(text: str) -> str:
        plain = _plain(text)
        for name in names:
            plain = plain.replace(name, "")
        return plain

    framing = [f for f in (unnamed(s) for s in re.split(r"(?<=[。.!?！？])", prompt)) if f]
    all_names = "".join(_plain(v) for v in vocabulary)
    kept: list[str] = []
    for text in texts:
        plain, rest = _plain(text), unnamed(text)
        if not plain or (all_names and len(names) > 1 and plain == all_names):
            continue
        if rest and any((len(rest) >= 3 and rest in f) or difflib.SequenceMatcher(None, rest, f).ratio() >= _ECHO_RATIO for f in framing):
            continue
        kept.append(text)
    return kept


def has_speech(samples: Any, sampling_rate: int = 16_000) -> bool:
    """Whether a voice activity detector finds speech in the 16 kHz mono ``samples``.

    Silence and noise make Whisper invent text (the prompt's product names, "Thank you
    for watching"); they are not decoded at all. Silero VAD ships inside faster-whisper;
    without it every clip counts as speech.
    """
    try:
        from faster_whisper.vad import get_speech_timestamps
    except ImportError:
        return True
    return bool(get_speech_timestamps(samples, sampling_rate=sampling_rate))


@dataclass(frozen=True, slots=True)
class Scored:
    """What both engines report per decoded segment."""

    avg_logprob: float
    no_speech_prob: float
    tokens: int


def confidence(segments: Iterable[Scored]) -> float:
    """One number in [0, 1] for a transcript: how much to trust it.

    The token-weighted mean of each segment's average token probability (``exp`` of
    whisper's ``avg_logprob``), scaled down by the chance that the segment is not speech
    at all. An empty transcript has confidence 0.
    """
    weighted = 0.0
    total = 0
    for seg in segments:
        tokens = max(seg.tokens, 1)
        p_text = math.exp(min(seg.avg_logprob, 0.0))
        weighted += tokens * p_text * (1.0 - min(max(seg.no_speech_prob, 0.0), 1.0))
        total += tokens
    if total == 0:
        return 0.0
    return round(min(max(weighted / total, 0.0), 1.0), 4)


@lru_cache(maxsize=1)
def _t2s() -> object | None:
    try:
        import opencc
    except ImportError:
        log.warning("opencc is not installed: Mandarin transcripts are not normalised to simplified")
        return None
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional characters to simplified; the prompt makes this rare, this makes it sure."""
    converter = _t2s()
    if converter is None:
        return text
    result = converter.convert(text)  # type: ignore[attr-defined]
    return str(result)


_FULL_WIDTH = {",": "，", "!": "！", "?": "？", ";": "；", ":": "："}
# ASCII punctuation right after a Chinese character (whisper's habit): full width, as a
# customer would type it and as the Chinese tokenizer of the NLU expects.
_ZH_PUNCT = re.compile(r"(?<=[\u3400-\u9fff])\s*([,!?;:])\s*")


def join_segments(texts: Iterable[str], language: str) -> str:
    """Segment texts to one transcript: Chinese runs together, English is spaced."""
    parts = [" ".join(t.split()) for t in texts]
    parts = [p for p in parts if p]
    if language == "zh":
        text = to_simplified("".join(parts))
        return _ZH_PUNCT.sub(lambda m: _FULL_WIDTH[m.group(1)], text)
    return " ".join(parts)
