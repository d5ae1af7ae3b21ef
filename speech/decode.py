"""Voice-note bytes in any format the platforms send, out as 16 kHz mono float32 samples.

WeChat and WeCom send AMR-NB; WeCom customer service may send Tencent SILK_V3; email
attachments and DingTalk bring mp3, m4a, ogg/opus or wav. Everything but SILK goes
through PyAV (the FFmpeg libraries bundled in its wheel); SILK goes through
``silk-python`` (import name ``pysilk``) or ``pilk``.

This module is synchronous and CPU-bound: callers on an event loop run it in a worker
(see :mod:`speech.pool`).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

from speech.errors import (
    AudioCorrupt,
    AudioEmpty,
    AudioTooLarge,
    AudioTooLong,
    UnsupportedFormat,
)

SAMPLE_RATE = 16_000

FORMATS = ("amr", "silk", "mp3", "m4a", "ogg", "opus", "wav")

# What platforms and file names call the same thing.
_ALIASES = {
    "amr-nb": "amr",
    "amrnb": "amr",
    "slk": "silk",
    "silk_v3": "silk",
    "aac": "m4a",
    "mp4": "m4a",
    "oga": "ogg",
    "wave": "wav",
    "mpeg": "mp3",
    "x-wav": "wav",
}

_SILK_MAGIC = b"#!SILK_V3"
_SILK_FRAME_S = 0.020  # SILK_V3 as Tencent writes it: one 20 ms frame per packet


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """What a single voice note may weigh and last."""

    max_bytes: int = 10 * 1024 * 1024
    max_duration_s: float = 120.0


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Mono float32 samples at :data:`SAMPLE_RATE`, and the format they were read as."""

    samples: npt.NDArray[np.float32]
    format: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def normalize_format(name: str) -> str:
    """Lower-case a platform's format name and map aliases (``amr-nb`` -> ``amr``)."""
    name = name.strip().lower().lstrip(".")
    return _ALIASES.get(name, name)


def sniff_format(data: bytes) -> str:
    """Guess the format from the first bytes; ``""`` when nothing matches."""
    head = data[:16]
    if head.startswith(b"#!AMR\n"):
        return "amr"
    if head.startswith(_SILK_MAGIC) or head[1:].startswith(_SILK_MAGIC):
        return "silk"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"OggS"):
        return "opus" if b"OpusHead" in data[:64] else "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return ""


def decode_audio(data: bytes, *, format: str = "", limits: AudioLimits | None = None) -> DecodedAudio:
    """Decode a voice note to 16 kHz mono float32.

    The bytes decide the format when they carry a signature (WeCom labels SILK notes as
    AMR at times); ``format`` is only the fallback for headerless data.

    Raises:
        AudioEmpty: no bytes, or no samples in them.
        AudioTooLarge: more bytes than ``limits.max_bytes``.
        AudioTooLong: longer than ``limits.max_duration_s``; found before decoding it all.
        UnsupportedFormat: neither the bytes nor ``format`` name a format we decode.
        AudioCorrupt: the bytes do not decode.
    """
    limits = limits or AudioLimits()
    if not data:
        raise AudioEmpty("the voice note is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise AudioTooLarge(
            f"the voice note is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes"
        )
    hinted = normalize_format(format) if format else ""
    detected = sniff_format(data) or hinted
    if hinted and hinted not in FORMATS and not sniff_format(data):
        raise UnsupportedFormat(f"audio format {format!r} is not supported; expected one of {FORMATS}")
    if detected == "silk":
        samples = _decode_silk(data, limits)
    else:
        samples = _decode_av(data, detected, limits)
    if samples.size == 0:
        raise AudioEmpty("the voice note holds no sound")
    return DecodedAudio(samples=samples, format=detected or "unknown")


def _too_long(seconds: float, limits: AudioLimits) -> AudioTooLong:
    return AudioTooLong(
        f"the voice note lasts {seconds:.0f} s or more; the limit is {limits.max_duration_s:.0f} s"
    )


# --- PyAV (AMR, mp3, m4a, ogg/opus, wav, and whatever else FFmpeg probes) ---------------


def _decode_av(data: bytes, fmt: str, limits: AudioLimits) -> npt.NDArray[np.float32]:
    max_samples = int(limits.max_duration_s * SAMPLE_RATE)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format="amr" if fmt == "amr" else None) as container:
            if not container.streams.audio:
                raise AudioCorrupt("the file holds no audio stream")
            stream = container.streams.audio[0]
            # Container metadata can be an estimate (AMR and CBR mp3 derive it from the
            # bit rate): reject early only when it is clearly over, and count samples below.
            if container.duration is not None and container.duration / av.time_base > limits.max_duration_s + 1:
                raise _too_long(container.duration / av.time_base, limits)
            for chunk in _resampled(container, stream, fmt):
                total += chunk.size
                if total > max_samples:
                    raise _too_long(total / SAMPLE_RATE, limits)
                chunks.append(chunk)
    except av.FFmpegError as exc:
        raise AudioCorrupt(f"the voice note could not be decoded as {fmt or 'audio'}: {exc}") from exc
    except (ValueError, IndexError, EOFError) as exc:  # PyAV raises these for garbage input too
        raise AudioCorrupt(f"the voice note could not be decoded as {fmt or 'audio'}: {exc}") from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks)


def _resampled(
    container: av.container.InputContainer, stream: av.AudioStream, fmt: str
) -> Iterator[npt.NDArray[np.float32]]:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    for frame in _frames(container, stream, fmt):
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def _frames(
    container: av.container.InputContainer, stream: av.AudioStream, fmt: str
) -> Iterator[av.AudioFrame]:
    if fmt == "amr" and "libopencore_amrnb" in av.codecs_available:
        # FFmpeg's own amrnb decoder drops DTX/SID comfort-noise frames ("not yet
        # implemented"), which WeChat notes are full of; opencore decodes them.
        codec = av.CodecContext.create("libopencore_amrnb", "r")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = 8000
        codec.layout = "mono"
        for packet in container.demux(stream):
            # demux() ends with an empty packet that flushes the decoder: no decode(None).
            for frame in codec.decode(packet):
                assert isinstance(frame, av.AudioFrame)
                yield frame
        return
    for frame in container.decode(stream):
        yield frame


# --- SILK_V3 -------------------------------------------------------------------------------


def silk_duration_s(data: bytes) -> float:
    """Length of a SILK_V3 note from its frame headers, without decoding it.

    Raises:
        AudioCorrupt: the bytes are not SILK_V3.
    """
    offset = data.find(_SILK_MAGIC)
    if offset not in (0, 1):
        raise AudioCorrupt("not a SILK_V3 file")
    pos = offset + len(_SILK_MAGIC)
    frames = 0
    while pos + 2 <= len(data):
        (size,) = struct.unpack_from("<H", data, pos)
        if size == 0xFFFF:  # Skype's end-of-stream marker; Tencent files simply end
            break
        pos += 2 + size
        if pos > len(data):
            break  # a truncated last frame: the decoder ignores it, so do we
        frames += 1
    return frames * _SILK_FRAME_S


def _decode_silk(data: bytes, limits: AudioLimits) -> npt.NDArray[np.float32]:
    duration = silk_duration_s(data)
    if duration > limits.max_duration_s:
        raise _too_long(duration, limits)
    if duration == 0:
        return np.zeros(0, dtype=np.float32)
    pcm = _silk_to_pcm16(data)
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
    return samples / 32768.0


def _silk_to_pcm16(data: bytes) -> bytes:
    try:
        import pysilk
    except ImportError:
        pysilk = None
    if pysilk is not None:
        out = io.BytesIO()
        try:
            pysilk.decode(io.BytesIO(data), out, SAMPLE_RATE)
        except pysilk.SilkError as exc:
            raise AudioCorrupt(f"the SILK voice note could not be decoded: {exc}") from exc
        return out.getvalue()
    try:
        import pilk
    except ImportError:
        raise UnsupportedFormat(
            "SILK needs the silk-python package (or pilk); neither is installed"
        ) from None
    # pilk works on paths only.
    with tempfile.TemporaryDirectory(prefix="kefu-silk-") as tmp:
        src, dst = os.path.join(tmp, "in.silk"), os.path.join(tmp, "out.pcm")
        with open(src, "wb") as fh:
            fh.write(data)
        try:
            pilk.decode(src, dst, pcm_rate=SAMPLE_RATE)
        except Exception as exc:  # pilk raises bare exceptions
            raise AudioCorrupt(f"the SILK voice note could not be decoded: {exc}") from exc
        with open(dst, "rb") as fh:
            return fh.read()
