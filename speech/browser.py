"""Voice notes as a browser plays them: any platform format in, 16 kHz mono WAV out.

Browsers play neither AMR nor SILK; the console serves agents this WAV next to the
transcript. Synchronous and CPU-bound: call it in a worker thread.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from speech.decode import SAMPLE_RATE, AudioLimits, decode_audio


def to_wav(data: bytes, format: str = "", limits: AudioLimits | None = None) -> bytes:
    """WAV (PCM 16-bit) of a voice note; raises what :func:`decode_audio` raises."""
    decoded = decode_audio(data, format=format, limits=limits)
    pcm = (np.clip(decoded.samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue()
