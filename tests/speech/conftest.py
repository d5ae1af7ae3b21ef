"""Real audio made offline (espeak-ng, then PyAV/silk-python encoders) and the real model.

Clips are generated once per session into a temporary folder; nothing binary is
committed. Tests that need the weights skip, with the reason, only when the models are
not installed (``python -m speech.cli install``; CI runs .ci/install-speech.sh).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from speech.install import models_installed
from speech.settings import SpeechSettings

REPO = Path(__file__).resolve().parents[2]
# Where .ci/install-speech.sh put the models (KEFU_SPEECH_MODELS, as for the script).
MODEL_PATH = os.environ.get("KEFU_SPEECH_MODEL_PATH") or str(
    Path(os.environ.get("KEFU_SPEECH_MODELS") or REPO / "var" / "models") / "whisper-base"
)

EN_TEXT = "My air conditioner is not cooling and it sounds like a tractor."
EN_MODEL_TEXT = "My air conditioner, model X K eight eight zero zero, is not cooling."
# 空调不制冷，声音像拖拉机 — espeak-ng's cmn-latn-pinyin voice reads tone-numbered pinyin.
ZH_PINYIN = "kong1 tiao2 bu4 zhi4 leng3, sheng1 yin1 xiang4 tuo1 la1 ji1"


@dataclass(frozen=True)
class Clips:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()


def speak(voice: str, text: str, out: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)


def read_pcm16(path: Path, rate: int) -> npt.NDArray[np.int16]:
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


def encode(pcm: npt.NDArray[np.int16], rate: int, out: Path, container_format: str, codec: str, bit_rate: int) -> None:
    """Encode mono 16-bit PCM with one of the encoders in PyAV's wheel."""
    with av.open(str(out), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate, frame_size=stream.codec_context.frame_size or None)
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def encode_silk(pcm: npt.NDArray[np.int16], rate: int, out: Path) -> None:
    import pysilk

    buf = io.BytesIO()
    pysilk.encode(io.BytesIO(pcm.tobytes()), buf, rate, 24000, tencent=True)  # as WeCom sends it
    out.write_bytes(buf.getvalue())


def make_clips(folder: Path) -> Clips:
    speak("en-us", EN_TEXT, folder / "en.wav")
    speak("en-us", EN_MODEL_TEXT, folder / "en_model.wav")
    speak("cmn-latn-pinyin", ZH_PINYIN, folder / "zh.wav")
    for name in ("en", "zh", "en_model"):
        pcm8 = read_pcm16(folder / f"{name}.wav", 8000)
        encode(pcm8, 8000, folder / f"{name}.amr", "amr", "libopencore_amrnb", 12200)
        pcm16 = read_pcm16(folder / f"{name}.wav", 16000)
        encode_silk(pcm16, 16000, folder / f"{name}.silk")
    pcm = read_pcm16(folder / "en.wav", 48000)
    encode(pcm, 48000, folder / "en.mp3", "mp3", "libmp3lame", 64000)
    encode(pcm, 48000, folder / "en.opus", "ogg", "libopus", 24000)
    encode(pcm, 48000, folder / "en.m4a", "ipod", "aac", 64000)
    return Clips(folder)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; see .ci/install-speech.sh)")
    return make_clips(tmp_path_factory.mktemp("speech-clips"))


@pytest.fixture(scope="session")
def model_path() -> str:
    if not models_installed(MODEL_PATH, "faster"):
        pytest.skip(f"Whisper models are not installed at {MODEL_PATH}: run `python -m speech.cli install`")
    return MODEL_PATH


@pytest.fixture(scope="session")
def openai_model_path(model_path: str) -> str:
    pytest.importorskip("whisper", reason="openai-whisper is not installed")
    if not models_installed(model_path, "openai"):
        pytest.skip(f"the openai-whisper checkpoint is not at {model_path}: run `python -m speech.cli install`")
    return model_path


@pytest.fixture(scope="session")
def settings_for(model_path: str) -> Callable[..., SpeechSettings]:
    def build(**overrides: object) -> SpeechSettings:
        return SpeechSettings.from_mapping({"model_path": model_path, **overrides})

    return build
