"""The ``speech:`` section of kefu.yml and the pure helpers behind language and confidence."""

from __future__ import annotations

import pytest
import yaml

from speech.language import Scored, choose_language, confidence, initial_prompt, join_segments
from speech.settings import SettingsError, SpeechSettings


def test_defaults_from_an_empty_section() -> None:
    settings = SpeechSettings.from_mapping({})
    assert settings == SpeechSettings()
    assert settings.engine == "faster"
    assert settings.compute_type == "int8"
    assert settings.language == "auto-zh-en"
    assert settings.max_bytes == 10 * 1024 * 1024
    assert settings.max_duration_s == 120.0
    assert SpeechSettings.from_mapping(None) == settings


def test_yaml_section_is_coerced() -> None:
    section = yaml.safe_load(
        """
        engine: openai
        model_path: /srv/models/large-v3
        device: cuda
        compute_type: float16
        workers: 2
        max_duration_s: 60
        vocabulary: [XK-8800, 8800]
        low_confidence: 0.4
        use_platform_recognition: no
        language: zh
        """
    )
    settings = SpeechSettings.from_mapping(section)
    assert settings.engine == "openai"
    assert settings.max_duration_s == 60.0 and isinstance(settings.max_duration_s, float)
    assert settings.vocabulary == ("XK-8800", "8800")
    assert settings.use_platform_recognition is False
    assert settings.workers == 2
    assert SpeechSettings.from_mapping({"vocabulary": "XK-8800"}).vocabulary == ("XK-8800",)


@pytest.mark.parametrize(
    "section",
    [
        {"engine": "whisper.cpp"},
        {"language": "auto"},
        {"workers": 0},
        {"max_duration_s": -1},
        {"low_confidence": 2},
        {"workers": "many"},
        {"use_platform_recognition": "perhaps"},
        {"vocabulary": {"a": 1}},
        {"modle_path": "typo"},
        {"max_pause_s": 0},
        {"min_run_s": -1},
        {"text_first": "sometimes"},
    ],
)
def test_bad_sections_raise_settings_error(section: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        SpeechSettings.from_mapping(section)


def test_needs_confirmation_uses_low_confidence() -> None:
    settings = SpeechSettings(low_confidence=0.5)
    assert settings.needs_confirmation(0.49)
    assert not settings.needs_confirmation(0.5)


def test_language_restricted_to_zh_and_en() -> None:
    # The scores whisper gives a short robotic Mandarin note: Thai wins the open race.
    scores = {"th": 0.41, "vi": 0.22, "zh": 0.19, "en": 0.03}
    assert choose_language("auto-zh-en", scores) == "zh"
    assert choose_language("en", scores) == "en"
    assert choose_language("auto-zh-en", {}) in ("zh", "en")


def test_prompts_carry_the_script_cue_and_vocabulary() -> None:
    assert initial_prompt("zh", ()) == "以下是普通话的句子。"
    assert "XK-8800" in initial_prompt("zh", ("XK-8800",))
    assert initial_prompt("en", ("XK-8800", "KF-2")) == "Product names: XK-8800, KF-2."
    assert initial_prompt("en", ()) == ""


def test_chinese_segments_are_joined_and_simplified() -> None:
    assert join_segments([" 空調不製冷，", " 聲音像拖拉機"], "zh") == "空调不制冷，声音像拖拉机"
    assert join_segments([" The air", "  conditioner "], "en") == "The air conditioner"
    assert join_segments(["空调不制冷, 声音像拖拉机?", "XK-8800, ok"], "zh") == "空调不制冷，声音像拖拉机？XK-8800, ok"


def test_confidence_range_and_ordering() -> None:
    assert confidence([]) == 0.0
    sure = confidence([Scored(-0.1, 0.01, 10)])
    unsure = confidence([Scored(-1.2, 0.01, 10)])
    silence = confidence([Scored(-0.1, 0.95, 10)])
    assert 0.0 <= unsure < sure <= 1.0
    assert silence < 0.1
