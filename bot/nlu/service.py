"""Rasa NLU as its own service, in one namespace for the CLI and the test fixtures:
its venv (:mod:`bot.nlu.environment`), its model (:mod:`bot.nlu.training`) and its
server (:mod:`bot.nlu.server`)."""

from __future__ import annotations

from bot.nlu.environment import (
    RASA_VERSION,
    REQUIREMENTS_FILE,
    VENV_MARKER,
    find_python310,
    install,
    rasa_env,
    rasa_executable,
    requirements_path,
    venv_is_current,
)
from bot.nlu.server import AsyncRasaServer, RasaServer, autostart, free_port, running_servers, status_ok
from bot.nlu.training import latest_model, model_path, train, training_files, training_hash

__all__ = [
    "RASA_VERSION", "REQUIREMENTS_FILE", "VENV_MARKER", "AsyncRasaServer", "RasaServer", "autostart",
    "find_python310", "free_port", "install", "latest_model", "model_path", "rasa_env", "rasa_executable",
    "requirements_path", "running_servers", "status_ok", "train", "training_files", "training_hash",
    "venv_is_current",
]
