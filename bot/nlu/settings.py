"""Settings for the NLU service and client: the ``nlu:`` section of ``kefu.yml``.

Example (every key optional)::

    nlu:
      urls: ["http://127.0.0.1:5005", "http://127.0.0.1:5006"]
      timeout_s: 2.0
      failure_threshold: 3
      reset_after_s: 10
      venv_path: var/rasa/venv       # or env KEFU_RASA_VENV
      models_path: var/rasa/models   # or env KEFU_RASA_MODELS
      data_path: nlu_data
      autostart: false               # kefu run starts Rasa when none answers
      quiet_wait_s: 60               # messages wait silently this long for NLU to come up
      max_wait_s: 600                # then a holding reply; past this a person takes over
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.nlu.errors import NluSettingsError

DEFAULT_URL = "http://127.0.0.1:5005"

#: Environment variables that override the file, so that CI can keep the 2.7 GB venv
#: and the trained models outside a fresh clone and reuse them between runs.
ENV_VENV = "KEFU_RASA_VENV"
ENV_MODELS = "KEFU_RASA_MODELS"

_KNOWN_KEYS = frozenset(
    {
        "urls",
        "timeout_s",
        "failure_threshold",
        "reset_after_s",
        "venv_path",
        "models_path",
        "data_path",
        "autostart",
        "quiet_wait_s",
        "max_wait_s",
    }
)


@dataclass(frozen=True)
class NluSettings:
    """Where Rasa lives and how the gateway talks to it.

    Relative paths are relative to the working directory (the repository root for
    ``kefu`` and CI).
    """

    urls: tuple[str, ...] = (DEFAULT_URL,)
    timeout_s: float = 2.0
    failure_threshold: int = 3
    reset_after_s: float = 10.0
    venv_path: Path = field(default_factory=lambda: Path("var/rasa/venv"))
    models_path: Path = field(default_factory=lambda: Path("var/rasa/models"))
    data_path: Path = field(default_factory=lambda: Path("nlu_data"))
    autostart: bool = False
    # Rasa needs about 40 s to load and a warm-up parse: a start or restart stays quiet.
    quiet_wait_s: float = 60.0
    max_wait_s: float = 600.0

    @property
    def state_path(self) -> Path:
        """Rasa's HOME, TMPDIR, caches and logs: beside the models, never in ``~``."""
        return self.models_path.parent

    @classmethod
    def from_mapping(
        cls,
        section: Mapping[str, Any] | None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> NluSettings:
        """Build settings from the ``nlu:`` section of ``kefu.yml``.

        Args:
            section: the parsed section, or ``None`` when the file has none.
            environ: where to read ``KEFU_RASA_VENV`` / ``KEFU_RASA_MODELS`` from
                (``os.environ`` by default); they win over the file.

        Raises:
            NluSettingsError: (a ``ConfigError`` and a ``ValueError``) an unknown key
                or a value of the wrong type or range; the message names the key.
        """
        section = dict(section or {})
        env = os.environ if environ is None else environ
        unknown = sorted(set(section) - _KNOWN_KEYS)
        if unknown:
            raise NluSettingsError(f"nlu: unknown key(s) {', '.join(unknown)}")
        defaults = cls()

        urls_raw = section.get("urls", defaults.urls)
        if isinstance(urls_raw, str):
            urls_raw = [urls_raw]
        if not isinstance(urls_raw, (list, tuple)) or not urls_raw:
            raise NluSettingsError("nlu.urls: expected a URL or a non-empty list of URLs")
        urls: list[str] = []
        for url in urls_raw:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise NluSettingsError(f"nlu.urls: {url!r} is not an http(s) URL")
            urls.append(url.rstrip("/"))

        timeout_s = _number(section, "timeout_s", defaults.timeout_s)
        reset_after_s = _number(section, "reset_after_s", defaults.reset_after_s)
        quiet_wait_s = _number(section, "quiet_wait_s", defaults.quiet_wait_s)
        max_wait_s = _number(section, "max_wait_s", defaults.max_wait_s)
        threshold = section.get("failure_threshold", defaults.failure_threshold)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise NluSettingsError("nlu.failure_threshold: expected an integer >= 1")
        autostart = section.get("autostart", defaults.autostart)
        if not isinstance(autostart, bool):
            raise NluSettingsError("nlu.autostart: expected true or false")

        venv = env.get(ENV_VENV) or section.get("venv_path") or defaults.venv_path
        models = env.get(ENV_MODELS) or section.get("models_path") or defaults.models_path
        data = section.get("data_path") or defaults.data_path
        return cls(
            urls=tuple(urls),
            timeout_s=timeout_s,
            failure_threshold=threshold,
            reset_after_s=reset_after_s,
            venv_path=_path("venv_path", venv),
            models_path=_path("models_path", models),
            data_path=_path("data_path", data),
            autostart=autostart,
            quiet_wait_s=quiet_wait_s,
            max_wait_s=max_wait_s,
        )


def _number(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise NluSettingsError(f"nlu.{key}: expected a positive number")
    return float(value)


def _path(key: str, value: object) -> Path:
    if isinstance(value, Path):
        return value.expanduser()
    if isinstance(value, str) and value:
        return Path(value).expanduser()
    raise NluSettingsError(f"nlu.{key}: expected a path")
