"""Language policy, decoding prompts, confidence and script normalisation, shared by engines."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

SUPPORTED = ("zh", "en")

# Whisper writes Mandarin in traditional or simplified characters almost at random
# unless the prompt shows it simplified text first.
ZH_PROMPT = "以下是普通话的句子。"


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


def initial_prompt(language: str, vocabulary: Iterable[str]) -> str:
    """The decoding prompt: the script cue for Mandarin plus the product names to expect."""
    names = [v.strip() for v in vocabulary if v.strip()]
    if language == "zh":
        return ZH_PROMPT + (f"产品型号：{'、'.join(names)}。" if names else "")
    return f"Product names: {', '.join(names)}." if names else ""


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
