"""faster-whisper (CTranslate2): the default engine; int8 on CPU, any compute type on GPU."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from speech.engines.base import Engine, Recognition
from speech.errors import EngineError, ModelNotInstalled
from speech.language import (
    Scored,
    choose_language,
    confidence,
    has_speech,
    initial_prompt,
    join_segments,
    needs_detection,
    without_prompt_echo,
)
from speech.settings import SpeechSettings


class FasterWhisperEngine(Engine):
    """A CTranslate2 Whisper model folder (``model.bin``, ``config.json``, ``tokenizer.json``).

    CTranslate2 releases the GIL while it computes and serves ``num_workers`` calls in
    parallel, so one instance is shared by all worker threads of a process.
    """

    name: ClassVar[str] = "faster"
    thread_safe: ClassVar[bool] = True

    def __init__(self, model: object, settings: SpeechSettings) -> None:
        self._model = model
        self._settings = settings

    @classmethod
    def load(cls, settings: SpeechSettings) -> FasterWhisperEngine:
        path = settings.model_path
        if not os.path.isfile(os.path.join(path, "model.bin")):
            raise ModelNotInstalled(
                f"no CTranslate2 model at {path!r} (model.bin missing); run `kefu speech install`"
            )
        from faster_whisper import WhisperModel

        model = WhisperModel(
            path,
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.threads_per_worker(),
            num_workers=settings.workers,
            local_files_only=True,
        )
        return cls(model, settings)

    @staticmethod
    def _language_scores(model: Any, samples: npt.NDArray[np.float32]) -> dict[str, float]:
        # WhisperModel.detect_language() encodes a full 30 s window, as long as the whole
        # transcription of a short note. CTranslate2 accepts a shorter encoder input and
        # the language scores barely move, so encode only a window sized to the note
        # (10 s at least): about 0.15 s instead of 1 s for a typical note on 2 cores.
        features = model.feature_extractor(samples[: 30 * 16_000])
        frames = int(features.shape[-1])
        window = min(3000, max(1000, -(-frames // 100) * 100))
        padded = np.zeros((features.shape[0], window), dtype=np.float32)
        padded[:, : min(frames, window)] = features[:, :window]
        results = model.model.detect_language(model.encode(padded))[0]
        return {str(token).strip("<|>"): float(prob) for token, prob in results}

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        from faster_whisper import WhisperModel

        model = self._model
        assert isinstance(model, WhisperModel)
        policy = self._settings.language
        if not has_speech(samples):
            return Recognition(text="", language=choose_language(policy, {}), confidence=0.0)
        vocabulary = self._settings.vocabulary
        try:
            if needs_detection(policy):
                language = choose_language(policy, self._language_scores(model, samples))
            else:
                language = choose_language(policy, {})
            prompt = initial_prompt(language, vocabulary, duration_s=len(samples) / 16_000)
            segments, _info = model.transcribe(
                samples,
                language=language,
                beam_size=self._settings.beam_size,
                best_of=self._settings.beam_size,
                initial_prompt=prompt or None,
                condition_on_previous_text=True,
                vad_filter=False,
            )
            # transcribe() is lazy: the decoding happens while iterating.
            decoded = list(segments)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"faster-whisper failed: {exc}") from exc
        kept = set(without_prompt_echo([s.text for s in decoded], prompt, vocabulary))
        heard = [s for s in decoded if s.text in kept]
        return Recognition(
            text=join_segments((s.text for s in heard), language),
            language=language,
            confidence=confidence(
                Scored(s.avg_logprob, s.no_speech_prob, len(s.tokens)) for s in heard
            ),
        )
