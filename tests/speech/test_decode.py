"""Decoding the formats the platforms send, and the typed errors for what cannot be used."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from speech.decode import SAMPLE_RATE, AudioLimits, decode_audio, silk_duration_s, sniff_format
from speech.errors import (
    AudioCorrupt,
    AudioEmpty,
    AudioRejected,
    AudioTooLarge,
    AudioTooLong,
    UnsupportedFormat,
)
from tests.speech.conftest import Clips

FILES = ["en.wav", "en.amr", "en.silk", "en.mp3", "en.m4a", "en.opus"]


@pytest.mark.parametrize("name", FILES)
def test_every_format_decodes_to_16k_mono_float32(clips: Clips, name: str) -> None:
    reference = decode_audio(clips.read("en.wav"))
    decoded = decode_audio(clips.read(name))

    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert decoded.format == name.split(".")[1]
    # Codec delay and frame padding differ a little; the length must not.
    assert abs(decoded.duration_s - reference.duration_s) < 0.15
    assert 0.05 < float(np.abs(decoded.samples).max()) <= 1.5


def test_sniffed_bytes_beat_a_wrong_platform_label(clips: Clips) -> None:
    # WeCom customer service labels some SILK notes as AMR.
    assert decode_audio(clips.read("en.silk"), format="amr").format == "silk"
    assert decode_audio(clips.read("en.opus"), format="ogg").format == "opus"


def test_sniff_format_signatures(clips: Clips) -> None:
    assert sniff_format(clips.read("en.amr")) == "amr"
    assert sniff_format(clips.read("en.silk")) == "silk"
    assert sniff_format(clips.read("en.silk")[1:]) == "silk"  # without Tencent's 0x02 prefix
    assert sniff_format(clips.read("en.wav")) == "wav"
    assert sniff_format(clips.read("en.m4a")) == "m4a"
    assert sniff_format(b"\x00" * 32) == ""


def test_amr_dtx_frames_are_decoded_not_dropped() -> None:
    # SID/NO_DATA frames (WeChat's silences) must still count as time: 1 s of NO_DATA.
    decoded = decode_audio(b"#!AMR\n" + bytes([0x7C]) * 50)
    assert decoded.duration_s == pytest.approx(1.0, abs=0.05)


def test_empty_file_is_audio_empty() -> None:
    with pytest.raises(AudioEmpty, match="empty"):
        decode_audio(b"", format="amr")


def test_garbage_is_audio_corrupt() -> None:
    with pytest.raises(AudioCorrupt):
        decode_audio(os.urandom(4096), format="")


def test_amr_cut_mid_frame_is_audio_corrupt(clips: Clips) -> None:
    with pytest.raises(AudioCorrupt):
        decode_audio(clips.read("en.amr")[:20] + b"\x00" * 5)


def test_truncated_file_is_a_typed_error_or_shorter_audio(clips: Clips) -> None:
    data = clips.read("en.m4a")
    try:
        decoded = decode_audio(data[: len(data) // 3])
    except AudioRejected:
        return
    assert decoded.duration_s < 4.5


def test_silk_header_only_is_empty() -> None:
    with pytest.raises(AudioEmpty):
        decode_audio(b"\x02#!SILK_V3")


def test_unknown_label_without_signature_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormat, match="flac"):
        decode_audio(b"\x00\x01\x02\x03" * 10, format="flac")


def test_too_many_bytes_is_rejected_before_decoding(clips: Clips) -> None:
    data = clips.read("en.wav")
    with pytest.raises(AudioTooLarge, match="limit is 1,000 bytes"):
        decode_audio(data, limits=AudioLimits(max_bytes=1000))


def test_two_hour_amr_is_too_long_and_cheap() -> None:
    # Two hours of AMR NO_DATA frames: 360 kB, rejected without decoding two hours.
    two_hours = b"#!AMR\n" + bytes([0x7C]) * (2 * 3600 * 50)
    with pytest.raises(AudioTooLong, match="limit is 120 s"):
        decode_audio(two_hours, limits=AudioLimits(max_duration_s=120))


def test_two_hour_silk_is_too_long_from_its_frame_headers() -> None:
    frame = b"\x01\x00\x00"  # one-byte frames: the length is read, the payload never decoded
    two_hours = b"\x02#!SILK_V3" + frame * (2 * 3600 * 50)
    assert silk_duration_s(two_hours) == pytest.approx(7200.0)
    with pytest.raises(AudioTooLong):
        decode_audio(two_hours)


def test_two_hour_wav_is_stopped_while_streaming() -> None:
    # A WAV header claiming two hours followed by silence streams until the limit trips;
    # the byte limit is raised so that only the duration limit can fire.
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 8000 * 130)  # 130 s, over a 120 s limit
    with pytest.raises(AudioTooLong):
        decode_audio(buf.getvalue(), limits=AudioLimits(max_bytes=50_000_000, max_duration_s=120))


def test_limit_is_inclusive_of_short_notes(clips: Clips) -> None:
    decoded = decode_audio(clips.read("en.amr"), limits=AudioLimits(max_duration_s=5))
    assert decoded.duration_s * SAMPLE_RATE == len(decoded.samples)
