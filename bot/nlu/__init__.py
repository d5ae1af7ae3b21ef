"""Natural-language understanding: Rasa NLU as its own service, and the gateway's client.

The gateway (Python 3.11+) only speaks HTTP to Rasa (Python 3.10, its own venv):

- :mod:`bot.nlu.client`: :class:`NluClient` (round robin, circuit breakers,
  :class:`NluUnavailable`), :class:`ParseResult`, :class:`Entity`.
- :mod:`bot.nlu.settings`: :class:`NluSettings`, the ``nlu:`` section of ``kefu.yml``.
- :mod:`bot.nlu.environment`, :mod:`bot.nlu.training`, :mod:`bot.nlu.server`: install / train / serve Rasa (blocking; CLI and fixtures), gathered in :mod:`bot.nlu.service`.
- :mod:`bot.nlu.cli`: ``kefu nlu install|train|serve|parse|test``.
"""

from bot.nlu.client import FALLBACK_INTENT, Entity, NluClient, ParseResult
from bot.nlu.errors import NluError, NluSettingsError, NluUnavailable, RasaSetupError
from bot.nlu.settings import NluSettings

__all__ = [
    "FALLBACK_INTENT",
    "Entity",
    "NluClient",
    "NluError",
    "NluSettings",
    "NluSettingsError",
    "NluUnavailable",
    "ParseResult",
    "RasaSetupError",
]
