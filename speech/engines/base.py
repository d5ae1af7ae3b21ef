"""The synchronous engine interface every recognition backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from speech.settings import SpeechSettings


@dataclass(frozen=True, slots=True)
class Recognition:
    """What an engine heard in one clip."""

    text: str
    language: str
    confidence: float


class Engine(abc.ABC):
    """A loaded speech model. Blocking and CPU-bound: call it from a worker, not a loop.

    An engine is built once per process (loading is the expensive part) and then asked
    to :meth:`recognize` many clips; whether concurrent calls are safe is the engine's
    :attr:`thread_safe`.
    """

    name: ClassVar[str]
    #: Whether several threads may call :meth:`recognize` on one instance at once.
    thread_safe: ClassVar[bool]

    @classmethod
    @abc.abstractmethod
    def load(cls, settings: SpeechSettings) -> Engine:
        """Load the model named by ``settings``.

        Raises:
            ModelNotInstalled: the model files are not where the settings say.
        """

    @abc.abstractmethod
    def recognize(self, samples: npt.NDArray[np.float32]) -> Recognition:
        """Transcribe 16 kHz mono float32 samples."""
