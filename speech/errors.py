"""The speech package's exception hierarchy: every error carries a short code and a message.

Callers catch :class:`SpeechError` to turn any speech failure into a reply ("please type
your question") and branch on the subclasses only where they can act: :class:`SpeechBusy`
is worth a retry later, :class:`AudioRejected` never is (the same bytes fail again).
"""

from __future__ import annotations

from bot.errors import KefuError


class SpeechError(KefuError):
    """Base of every error the speech package raises on purpose."""

    code: str = "speech_error"


class AudioRejected(SpeechError):
    """The audio cannot be transcribed as sent; retrying the same bytes will not help."""

    code = "audio_rejected"


class AudioEmpty(AudioRejected):
    """The audio holds no samples (an empty file or a container without sound)."""

    code = "audio_empty"


class AudioCorrupt(AudioRejected):
    """The audio could not be decoded: damaged, truncated or not audio at all."""

    code = "audio_corrupt"


class UnsupportedFormat(AudioRejected):
    """The audio format is not one the decoder handles."""

    code = "unsupported_format"


class AudioTooLarge(AudioRejected):
    """The audio is larger in bytes than the configured limit."""

    code = "audio_too_large"


class AudioTooLong(AudioRejected):
    """The audio lasts longer than the configured limit."""

    code = "audio_too_long"


class SpeechBusy(SpeechError):
    """Every worker is busy and the wait queue is full; try again later."""

    code = "busy"


class SpeechClosed(SpeechError):
    """The transcriber was closed; no new work is accepted."""

    code = "closed"


class ModelNotInstalled(SpeechError):
    """The configured model files are missing; run ``kefu speech install``."""

    code = "model_not_installed"


class ModelInstallError(SpeechError):
    """Preparing the model files failed (missing package, checksum mismatch, bad layout)."""

    code = "model_install"


class EngineError(SpeechError):
    """The recognition engine failed on audio that decoded fine."""

    code = "engine"
