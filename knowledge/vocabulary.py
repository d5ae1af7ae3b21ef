"""Accepted transcript corrections as the speech model's vocabulary, for review.

Why a vocabulary and not training data for Whisper: on the premises there is no GPU to
fine-tune the speech model on a few hundred corrected notes, and a fine-tuned model
would have to be checked and shipped. What customers correct is mostly the product's
own names (``XK-8800`` heard as ``xk八八零零``); Whisper spells them right when its
decoding prompt names them (:func:`speech.language.initial_prompt`), and the prompt
takes effect at the next start, on the same model. So the names a correction brought in
that the transcript lacked are written, one a line, to a file ``speech.vocabulary_file``
reads (``nlu_data/speech_vocabulary.txt`` by default), with their source: how many
accepted corrections carried the name and who accepted them. The corrected sentences
themselves need no second route into the NLU data: a sentence the NLU then misread is a
missed turn, which the trainer labels with an intent like any other.

The file is written whole from the accepted corrections, sorted, without a date, so
exporting twice writes the same bytes; names the configuration already lists are left
out. At most :data:`MAX_TERMS` names, the most corrected first: Whisper's prompt holds
about 224 tokens.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from knowledge.transcripts import KeptCorrection

FILE_NAME = "speech_vocabulary.txt"
MAX_TERMS = 40
# A product or model name: Latin letters and digits, with a digit in it (XK-8800, ZR300, HL-1200B).
_NAME = re.compile(r"(?<![A-Za-z0-9-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![A-Za-z0-9-])")


@dataclass
class Vocabulary:
    text: str = ""
    terms: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # the corrections that gave a name


def new_names(heard: str, meant: str) -> list[str]:
    """The product names in ``meant`` that ``heard`` does not spell that way."""
    return [n for n in dict.fromkeys(_NAME.findall(meant)) if n not in heard]


def render(accepted: Iterable[KeptCorrection], *, configured: Iterable[str] = ()) -> Vocabulary:
    known = {c.strip().casefold() for c in configured}
    counts: Counter[str] = Counter()
    reviewers: defaultdict[str, set[str]] = defaultdict(set)
    out = Vocabulary()
    for kept in accepted:
        names = [n for n in new_names(kept.correction.heard, kept.correction.meant) if n.casefold() not in known]
        if names:
            out.messages.append(kept.correction.message)
        for name in names:
            counts[name] += 1
            reviewers[name].add(kept.reviewed_by or "unknown")
    out.terms = [n for n, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TERMS]]
    lines = [
        "# Product names customers' voice notes were corrected to: corrections a trainer accepted",
        "# on /admin/trainer/transcripts, written by `kefu kb export-labels`. Review, then point",
        "# speech.vocabulary_file here; Whisper's decoding prompt names them from the next start.",
        *(f"{n}  # source: {counts[n]} accepted correction{'s' if counts[n] > 1 else ''}, "
          f"reviewed by {', '.join(sorted(reviewers[n]))}" for n in out.terms),
    ]
    out.text = "\n".join(lines) + "\n"
    return out
