"""Where a voice note becomes the text of a turn.

The worker hands every voice message here: the platform's own recognition is used when
configured (and present), otherwise the audio is fetched through the channel and
transcribed by the local Whisper pool (:mod:`speech`). The transcript is stored with the
message for agents, and the audio in the voice archive (:mod:`bot.voice_archive`) as soon
as it is fetched, so agents can still play it after the platform has let it go. A transcript below the confidence threshold is read back to the
customer ("我听到的是：……，对吗？") instead of being acted on. When the customer then says
it was wrong and says it again, or answers with the sentence they meant, the pair (what
was heard, what was meant) goes to the ``corrections`` sink for the trainer.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.logs import ref
from bot.messages import InboundMessage, MediaRef
from bot.store import MessageStore, channel_identity
from bot.voice_archive import VoiceArchive
from channels.base import Channel
from channels.errors import PlatformError

if TYPE_CHECKING:
    from speech import SpeechSettings, Transcriber

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    confident: bool
    source: str  # "whisper" or "platform"
    problem: str = ""  # why nothing usable was heard: too_long, too_large, corrupt, empty


@dataclass(frozen=True, slots=True)
class CorrectedTranscript:
    """A transcript the customer corrected after it was read back to them."""

    message: str  # the voice note's message key (its audio is in the voice archive under it)
    conversation: str
    heard: str  # the transcript read back
    meant: str  # what the customer said it should be
    correction: str  # the key of the message that carried the correction
    language: str
    how: str  # "said_again" (denied, then said it again) or "restated" (answered with the sentence)


class Corrections(Protocol):
    async def corrected(self, correction: CorrectedTranscript) -> None: ...


class Deferred(Exception):
    """The message cannot be handled now (a busy pool, NLU down); retry it later."""


class VoiceStep:
    def __init__(
        self,
        transcriber: Transcriber | None,
        settings: SpeechSettings | None,
        store: MessageStore,
        *,
        model: str = "",
        archive: VoiceArchive | None = None,
        corrections: Corrections | None = None,
    ) -> None:
        """``model`` names what transcribes, stored with each transcript (the customer's
        data page shows it), e.g. ``whisper-base (faster-whisper 1.2.1)``."""
        self.corrections = corrections
        self.transcriber = transcriber
        self.settings = settings
        self.store = store
        self.model = model
        self.archive = archive

    def text_turn(self) -> contextlib.AbstractContextManager[None]:
        """Wrap a text turn: local transcription yields the CPU to it (speech.text_first)."""
        if self.transcriber is None:
            return contextlib.nullcontext()
        return self.transcriber.text_turn()

    async def hear(self, msg: InboundMessage, channel: Channel | None) -> Heard:
        from speech import AudioEmpty, AudioRejected, AudioTooLarge, AudioTooLong, SpeechBusy, SpeechError

        media = msg.media
        recognition = media.recognition if media else ""
        use_platform = self.settings is not None and self.settings.use_platform_recognition
        if recognition and (use_platform or self.transcriber is None):
            await self._keep_only(msg, channel)
            await self.store.update_inbound(msg.key, {"transcript": {"text": recognition, "source": "platform"}})
            return Heard(recognition, confident=True, source="platform")
        if self.transcriber is None or channel is None or media is None:
            await self._keep_only(msg, channel)
            return Heard("", confident=False, source="none", problem="unavailable")
        audio = await self._fetch_and_keep(msg, channel, media)
        try:
            result = await self.transcriber.transcribe(audio, format=media.format)
        except SpeechBusy as exc:
            raise Deferred("speech pool is full") from exc
        except AudioTooLong:
            return Heard("", False, "whisper", problem="too_long")
        except AudioTooLarge:
            return Heard("", False, "whisper", problem="too_large")
        except AudioEmpty:
            return Heard("", False, "whisper", problem="empty")
        except AudioRejected as exc:
            log.warning("voice note %s rejected: %s", ref(msg.key), type(exc).__name__)
            return Heard("", False, "whisper", problem="corrupt")
        except SpeechError as exc:
            log.error("voice note %s could not be transcribed: %s", ref(msg.key), type(exc).__name__)
            return Heard("", False, "whisper", problem="corrupt")
        threshold = self.settings.low_confidence if self.settings is not None else 0.0
        await self.store.update_inbound(
            msg.key,
            {
                "transcript": {
                    "text": result.text,
                    "language": result.language,
                    "confidence": result.confidence,
                    "duration_s": result.duration_s,
                    "elapsed_s": result.elapsed_s,
                    "engine": result.engine,
                    "model": self.model,
                    "source": "whisper",
                    "platform_recognition": recognition,
                }
            },
        )
        return Heard(result.text.strip(), confident=result.confidence >= threshold, source="whisper")

    async def corrected(self, correction: CorrectedTranscript) -> None:
        """Keep a corrected transcript for the trainer. A failure costs the trainer one
        example, never the customer the turn."""
        if self.corrections is None:
            return
        try:
            await self.corrections.corrected(correction)
        except Exception as exc:
            log.warning("corrected transcript of %s not kept: %s", ref(correction.message), type(exc).__name__)
            log.debug("corrected transcript of %s", ref(correction.message), exc_info=True)

    async def _fetch_and_keep(self, msg: InboundMessage, channel: Channel, media: MediaRef) -> bytes:
        audio = await channel.fetch_media(media)
        if self.archive is not None:
            await self.archive.keep(msg.key, audio, media.format, customer=channel_identity(msg.channel, msg.account, msg.sender))
        return audio

    async def _keep_only(self, msg: InboundMessage, channel: Channel | None) -> None:
        """Fetch a note only to keep it: nothing here needs its audio, so a platform that
        fails to hand it over costs the agents the recording, never the customer a turn."""
        if self.archive is None or not self.archive.settings.enabled or channel is None or msg.media is None:
            return
        try:
            await self._fetch_and_keep(msg, channel, msg.media)
        except PlatformError as exc:
            log.warning("voice note %s not kept: the platform did not hand it over (%s)", ref(msg.key), type(exc).__name__)
