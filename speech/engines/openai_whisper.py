"""openai-whisper (PyTorch): the reference implementation, for comparison and GPU users.

Its decoder installs key/value-cache hooks on the shared model for each call, so two
threads must never decode with one instance: the pool gives each worker its own process.
"""

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
from speech.settings import OPENAI_CHECKPOINT_NAME, SpeechSettings


def checkpoint_path(model_path: str) -> str:
    """The ``.pt`` file ``model_path`` names: the file itself, or the one in the folder."""
    if os.path.isdir(model_path):
        return os.path.join(model_path, OPENAI_CHECKPOINT_NAME)
    return model_path


class OpenAIWhisperEngine(Engine):
    """An openai-whisper checkpoint ``{"dims", "model_state_dict"}`` (see :mod:`speech.convert`)."""

    name: ClassVar[str] = "openai"
    thread_safe: ClassVar[bool] = False

    def __init__(self, model: Any, settings: SpeechSettings) -> None:
        self._model = model
        self._settings = settings
        self._fp16 = "float16" in settings.compute_type and str(model.device).startswith("cuda")

    @classmethod
    def load(cls, settings: SpeechSettings) -> OpenAIWhisperEngine:
        path = checkpoint_path(settings.model_path)
        if not os.path.isfile(path):
            raise ModelNotInstalled(
                f"no openai-whisper checkpoint at {path!r}; run `kefu speech install`"
            )
        import torch
        import whisper

        torch.set_num_threads(settings.threads_per_worker())
        device = "cpu" if settings.device == "cpu" else None  # None: whisper picks cuda if present
        model = whisper.load_model(path, device=device)
        return cls(model, settings)

    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        import torch
        import whisper

        model = self._model
        policy = self._settings.language
        if not has_speech(samples):
            return Recognition(text="", language=choose_language(policy, {}), confidence=0.0)
        vocabulary = self._settings.vocabulary
        try:
            with torch.inference_mode():
                if needs_detection(policy):
                    mel = whisper.log_mel_spectrogram(
                        whisper.pad_or_trim(samples), model.dims.n_mels
                    ).to(model.device)
                    _, probs = model.detect_language(mel)
                    language = choose_language(policy, probs)
                else:
                    language = choose_language(policy, {})
                prompt = initial_prompt(language, vocabulary, duration_s=len(samples) / 16_000)
                result = model.transcribe(
                    samples,
                    language=language,
                    beam_size=self._settings.beam_size,
                    best_of=self._settings.beam_size,
                    initial_prompt=prompt or None,
                    condition_on_previous_text=True,
                    fp16=self._fp16,
                    verbose=None,
                )
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"openai-whisper failed: {exc}") from exc
        kept = set(without_prompt_echo([str(s["text"]) for s in result["segments"]], prompt, vocabulary))
        segments: list[dict[str, Any]] = [s for s in result["segments"] if str(s["text"]) in kept]
        return Recognition(
            text=join_segments((str(s["text"]) for s in segments), language),
            language=language,
            confidence=confidence(
                Scored(float(s["avg_logprob"]), float(s["no_speech_prob"]), len(s["tokens"]))
                for s in segments
            ),
        )
