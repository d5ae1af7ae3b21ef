"""NluSettings.from_mapping: the `nlu:` section of kefu.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.settings import NluSettings


def test_defaults_when_section_missing() -> None:
    s = NluSettings.from_mapping(None, environ={})
    assert s.urls == ("http://127.0.0.1:5005",)
    assert s.timeout_s == 2.0
    assert s.venv_path == Path("var/rasa/venv")
    assert s.models_path == Path("var/rasa/models")
    assert s.data_path == Path("nlu_data")
    assert s.state_path == Path("var/rasa")
    assert s.autostart is False


def test_values_from_section_and_env_override() -> None:
    s = NluSettings.from_mapping(
        {"urls": ["http://127.0.0.1:5005/", "http://127.0.0.1:5006"], "timeout_s": 1,
         "venv_path": "/opt/rasa", "autostart": True, "failure_threshold": 5},
        environ={"KEFU_RASA_VENV": "/cache/venv", "KEFU_RASA_MODELS": "/cache/models"},
    )
    assert s.urls == ("http://127.0.0.1:5005", "http://127.0.0.1:5006")
    assert s.timeout_s == 1.0 and s.failure_threshold == 5 and s.autostart
    assert s.venv_path == Path("/cache/venv") and s.models_path == Path("/cache/models")


def test_single_url_string_is_accepted() -> None:
    s = NluSettings.from_mapping({"urls": "http://rasa:5005"}, environ={})
    assert s.urls == ("http://rasa:5005",)


@pytest.mark.parametrize(
    "section",
    [
        {"urls": []},
        {"urls": ["ftp://x"]},
        {"timeout_s": 0},
        {"timeout_s": "2"},
        {"failure_threshold": 0},
        {"autostart": "yes"},
        {"venv_path": 3},
        {"nope": 1},
    ],
)
def test_bad_values_are_rejected(section: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="nlu"):
        NluSettings.from_mapping(section, environ={})


def test_settings_error_is_a_kefu_config_error() -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        NluSettings.from_mapping({"timeout_s": -1}, environ={})
    assert info.value.code == "nlu_config"
