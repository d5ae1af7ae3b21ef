"""Recognition engines, registered by the name ``speech.engine`` takes in kefu.yml.

Adding an engine = one module with an :class:`~speech.engines.base.Engine` subclass +
one line in :data:`ENGINES`. Engines import their heavy libraries only when loaded, so
choosing one never requires the other to be installed.
"""

from __future__ import annotations

from speech.engines.base import Engine, Recognition
from speech.engines.faster import FasterWhisperEngine
from speech.engines.openai_whisper import OpenAIWhisperEngine
from speech.settings import SpeechSettings

ENGINES: dict[str, type[Engine]] = {
    cls.name: cls for cls in (FasterWhisperEngine, OpenAIWhisperEngine)
}


def engine_class(settings: SpeechSettings) -> type[Engine]:
    """The engine class ``settings.engine`` names."""
    return ENGINES[settings.engine]


def load_engine(settings: SpeechSettings) -> Engine:
    """Load the configured engine's model (slow: seconds, hundreds of MB)."""
    return engine_class(settings).load(settings)


__all__ = ["ENGINES", "Engine", "Recognition", "engine_class", "load_engine"]
