"""The ``speech:`` section of kefu.yml, read once at the composition root and handed down.

Every key is optional; these are the defaults::

    speech:
      engine: faster              # faster | openai
      model_path: var/models/whisper-base
      device: cpu                 # cpu | cuda | auto
      compute_type: int8          # CTranslate2 type; float16 on a GPU
      cpu_threads: 0              # 0 = the cores shared among workers
      workers: 1
      max_queue: 8                # waiting notes beyond the workers; more -> SpeechBusy
      max_bytes: 10485760         # 10 MB
      max_duration_s: 120
      language: auto-zh-en        # auto-zh-en | zh | en
      vocabulary: []              # e.g. [XK-8800, XK-9900]
      vocabulary_file: ""         # more names, one a line ('#' starts a comment): e.g. the
                                  # trainer's export, nlu_data/speech_vocabulary.txt
      low_confidence: 0.5
      use_platform_recognition: false  # true: use WeChat/DingTalk recognition instead of Whisper
      beam_size: 5
      isolation: process          # process: transcribe in child processes at lower CPU
                                  # priority, so text traffic keeps its latency; thread
      nice: 19                    # the children's niceness (0-19) with isolation: process
      idle_class: true            # Linux: children in SCHED_IDLE, below every niceness
      text_first: true            # pause the children while text turns are handled
      max_pause_s: 5.0            # ...but never longer than this at a stretch
      min_run_s: 0.5              # ...after which they run at least this long
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from speech.errors import SpeechError

ENGINES = ("faster", "openai")
LANGUAGE_POLICIES = ("auto-zh-en", "zh", "en")

DEFAULT_MODELS_DIR = os.path.join("var", "models")
DEFAULT_MODEL_NAME = "whisper-base"
# The openai-whisper checkpoint lives beside the CTranslate2 files it was converted from,
# so one ``model_path`` serves both engines.
OPENAI_CHECKPOINT_NAME = "openai-whisper.pt"


class SettingsError(SpeechError):
    """The ``speech:`` configuration has an unknown key or a value out of range."""

    code = "config"


@dataclass(frozen=True)
class SpeechSettings:
    """How voice notes become text.

    Attributes:
        engine: ``"faster"`` (faster-whisper / CTranslate2) or ``"openai"`` (openai-whisper
            / PyTorch, run in worker processes).
        model_path: for ``faster``, a CTranslate2 model folder; for ``openai``, a ``.pt``
            checkpoint or a folder holding ``openai-whisper.pt``. Point it at a larger
            model (and set ``device``/``compute_type``) to use a GPU.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        compute_type: CTranslate2 compute type (``int8``, ``int8_float16``, ``float16``,
            ``float32``...). openai-whisper uses fp16 only when this names float16 on a GPU.
        cpu_threads: threads per worker; 0 means the machine's cores shared among workers.
        workers: transcriptions running at once (one model per process, shared by threads
            for ``faster``; one process each for ``openai``).
        max_queue: transcriptions allowed to wait for a worker; past that
            :class:`~speech.errors.SpeechBusy` is raised at once.
        max_bytes: largest accepted audio file.
        max_duration_s: longest accepted audio.
        language: ``"auto-zh-en"`` detects only between Mandarin and English (whisper's
            open detection labels short Mandarin notes as Thai or Vietnamese), or a fixed
            ``"zh"`` / ``"en"``.
        vocabulary: product and model names (``XK-8800``) put in the decoding prompt so
            they come out spelled right.
        vocabulary_file: a file of more such names, read once when the settings are
            built and added after ``vocabulary``; a file that does not exist yet (no
            export has run) adds none.
        low_confidence: transcripts below this confidence should be read back to the
            customer before acting on them (see :meth:`needs_confirmation`).
        use_platform_recognition: prefer the platform's own recognition text (WeChat's
            ``Recognition``, DingTalk's ``recognition``) when a message carries one; the
            gateway worker reads this, the speech package does not.
        beam_size: beam width for both engines (the same on both keeps their output
            comparable).
        isolation: ``"process"`` runs transcription in child processes at lower CPU
            priority; ``"thread"`` in threads of the gateway (tests, debugging).
        nice: the children's niceness with process isolation.
        idle_class: on Linux, also put the children in the ``SCHED_IDLE`` class: they run
            only on CPU time nothing else wants, and a waking text worker preempts them at
            once (niceness 19 still leaves them a share and a slice to finish).
        text_first: with process isolation, stop the children (SIGSTOP) while this
            process handles text turns and let them go on (SIGCONT) when none is in
            flight. SCHED_IDLE keeps them off a core text wants, but not out of the shared
            caches and memory bandwidth: on two cores a transcribing child still raised
            text p99 1.6-fold (bench/bench_voice.py). See :class:`speech.text_first.TextFirst`.
        max_pause_s: the longest the children stay stopped at a stretch under steady
            text traffic, so voice notes always progress.
        min_run_s: how long they then run, text or not, before they may be stopped again.
    """

    engine: str = "faster"
    model_path: str = os.path.join(DEFAULT_MODELS_DIR, DEFAULT_MODEL_NAME)
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    workers: int = 1
    max_queue: int = 8
    max_bytes: int = 10 * 1024 * 1024
    max_duration_s: float = 120.0
    language: str = "auto-zh-en"
    vocabulary: tuple[str, ...] = ()
    vocabulary_file: str = ""
    low_confidence: float = 0.5
    use_platform_recognition: bool = False
    beam_size: int = 5
    isolation: str = "process"
    nice: int = 19
    idle_class: bool = True
    text_first: bool = True
    max_pause_s: float = 5.0
    min_run_s: float = 0.5

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise SettingsError(f"speech.engine must be one of {ENGINES}, not {self.engine!r}")
        if self.language not in LANGUAGE_POLICIES:
            raise SettingsError(
                f"speech.language must be one of {LANGUAGE_POLICIES}, not {self.language!r}"
            )
        for name in ("workers", "beam_size", "max_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"speech.{name} must be at least 1")
        if self.max_queue < 0 or self.cpu_threads < 0:
            raise SettingsError("speech.max_queue and speech.cpu_threads cannot be negative")
        if self.max_duration_s <= 0:
            raise SettingsError("speech.max_duration_s must be positive")
        if not 0.0 <= self.low_confidence <= 1.0:
            raise SettingsError("speech.low_confidence must be between 0 and 1")
        if self.isolation not in ("process", "thread"):
            raise SettingsError(f"speech.isolation must be process or thread, not {self.isolation!r}")
        if not 0 <= self.nice <= 19:
            raise SettingsError("speech.nice must be between 0 and 19")
        if self.max_pause_s <= 0 or self.min_run_s <= 0:
            raise SettingsError("speech.max_pause_s and speech.min_run_s must be positive")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None) -> SpeechSettings:
        """Build settings from the ``speech:`` section of kefu.yml; every key is optional.

        Raises:
            SettingsError: on an unknown key or a value of the wrong type or range.
        """
        section = section or {}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise SettingsError(f"unknown speech settings: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, raw in section.items():
            default = getattr(cls, key)
            try:
                values[key] = _coerce(default, raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"speech.{key}: {exc}") from exc
        if values.get("vocabulary_file"):
            listed = values.get("vocabulary", ())
            values["vocabulary"] = tuple(dict.fromkeys((*listed, *read_vocabulary(values["vocabulary_file"]))))
        return cls(**values)

    def threads_per_worker(self) -> int:
        """CPU threads each worker's model may use."""
        if self.cpu_threads:
            return self.cpu_threads
        return max(1, (os.cpu_count() or 1) // self.workers)

    def needs_confirmation(self, confidence: float) -> bool:
        """Whether a transcript this confident should be read back to the customer."""
        return confidence < self.low_confidence


def read_vocabulary(path: str) -> tuple[str, ...]:
    """The names in a vocabulary file: one a line, ``#`` starts a comment.

    Raises:
        SettingsError: the file cannot be read as text.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"speech.vocabulary_file: {exc}") from None
    return tuple(dict.fromkeys(name for line in lines if (name := line.split("#", 1)[0].strip())))


def _coerce(default: Any, raw: Any) -> Any:
    # YAML gives us ints for floats ("120"), scalars for one-item lists and
    # "yes"/"no"-style booleans already parsed; anything else is a configuration mistake.
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "yes", "no", "1", "0"):
            return raw.lower() in ("true", "yes", "1")
        raise TypeError(f"expected true or false, got {raw!r}")
    if isinstance(default, tuple):
        if isinstance(raw, str):
            return (raw,)
        if isinstance(raw, (list, tuple)) and all(isinstance(v, (str, int)) for v in raw):
            return tuple(str(v) for v in raw)
        raise TypeError(f"expected a list of strings, got {raw!r}")
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise TypeError(f"expected a number, got {raw!r}")
        return float(raw)
    if isinstance(default, int):
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise TypeError(f"expected an integer, got {raw!r}")
        return int(raw)
    if not isinstance(raw, str):
        raise TypeError(f"expected a string, got {raw!r}")
    return raw
