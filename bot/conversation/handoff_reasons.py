"""Why a conversation waits for a human: a code, its parameters and an English sentence.

A skill names its reasons once, as module-level :class:`HandoffCode` constants next to
the code that hands over (``NOT_UNDERSTOOD = HandoffCode("not_understood", "not
understood {count} times in a row")``), and calls one to make the
:class:`HandoffReason` it passes to :meth:`~bot.conversation.handoff.Handoff.to_queue`.
The English sentence is what the API and the logs show; the code and parameters let the
console say the same in the agent's own language without reading the sentence back.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HandoffReason:
    """One hand-off's reason as stored. ``code`` is empty for records written before
    reasons had codes: those have only their ``text``."""

    code: str
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True, slots=True)
class HandoffCode:
    """A kind of hand-off reason: its code and its English sentence, whose ``{fields}``
    are the parameters each reason of this kind carries."""

    code: str
    english: str

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.english) if name)

    def __call__(self, **params: object) -> HandoffReason:
        given = {name: str(value) for name, value in params.items()}
        if set(given) != self.fields:
            raise TypeError(f"hand-off reason {self.code} takes {sorted(self.fields)}, got {sorted(given)}")
        return HandoffReason(self.code, given, self.english.format(**given))
