"""The real Rasa server on loopback, one per test process, for every package that needs it.

Registered once in the root conftest (``pytest_plugins``): a session fixture imported
into several test modules would be a separate fixture in each, and each would start its
own server (about 40 s apiece on two cores).

The Rasa fixture is synchronous and session-scoped: install (no-op when the venv
matches the pinned requirements), train (no-op when a model for the current data hash
exists), serve on a free port, stop at the end. Its blocking work never runs on an
event loop. Set KEFU_RASA_VENV / KEFU_RASA_MODELS to keep the venv and models outside
the work tree (CI does, to reuse them across fresh clones).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.nlu import service
from bot.nlu.settings import NluSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def nlu_settings() -> NluSettings:
    """Settings anchored at the repository root, whatever pytest's working directory."""
    return NluSettings.from_mapping(
        {
            "data_path": str(ROOT / "nlu_data"),
            "venv_path": str(ROOT / "var/rasa/venv"),
            "models_path": str(ROOT / "var/rasa/models"),
        }
    )


@pytest.fixture(scope="session")
def rasa_model(nlu_settings: NluSettings) -> Path:
    """The trained model for the current data (installs and trains only if needed)."""
    service.install(nlu_settings, out=sys.stderr)
    return service.train(nlu_settings, out=sys.stderr)


@pytest.fixture(scope="session")
def rasa_url(nlu_settings: NluSettings, rasa_model: Path) -> Iterator[str]:
    """Base URL of a real Rasa server serving the current model."""
    with service.running_servers(nlu_settings, rasa_model, [service.free_port()]) as servers:
        yield servers[0].url
