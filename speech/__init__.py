"""Speech: where a customer's voice note becomes text.

The gateway worker builds one transcriber at startup and awaits it per voice note::

    settings = SpeechSettings.from_mapping(config.get("speech", {}))
    transcriber = build_transcriber(settings)
    transcript = await transcriber.transcribe(audio_bytes, format="amr")
    ...
    await transcriber.close()

Modules: :mod:`speech.decode` (platform audio formats to samples), :mod:`speech.engines`
(faster-whisper and openai-whisper), :mod:`speech.pool` (the async, bounded worker
pool), :mod:`speech.install` (model preparation), :mod:`speech.convert` (CTranslate2 to
openai-whisper checkpoint), :mod:`speech.cli` (``kefu speech ...``).
"""

from speech.errors import (
    AudioCorrupt,
    AudioEmpty,
    AudioRejected,
    AudioTooLarge,
    AudioTooLong,
    EngineError,
    ModelInstallError,
    ModelNotInstalled,
    SpeechBusy,
    SpeechClosed,
    SpeechError,
    UnsupportedFormat,
)
from speech.pool import PooledTranscriber, Transcriber, Transcript, build_transcriber
from speech.settings import SettingsError, SpeechSettings

__all__ = [
    "AudioCorrupt",
    "AudioEmpty",
    "AudioRejected",
    "AudioTooLarge",
    "AudioTooLong",
    "EngineError",
    "ModelInstallError",
    "ModelNotInstalled",
    "PooledTranscriber",
    "SettingsError",
    "SpeechBusy",
    "SpeechClosed",
    "SpeechError",
    "SpeechSettings",
    "Transcriber",
    "Transcript",
    "UnsupportedFormat",
    "build_transcriber",
]
