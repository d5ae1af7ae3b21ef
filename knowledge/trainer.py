"""The trainer's first step: turns the bot handled poorly, similar sentences together.

Missed turns (:mod:`knowledge.missed`) are grouped by meaning with the same sentence
encoder retrieval uses, greedily: each turn joins the first group whose first sentence
is within ``similarity`` (cosine), else starts a group. Groups are ranked by size, so
the trainer labels what customers ask most first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.encoder import Vectors
from knowledge.missed import MissedTurn

# Paraphrases and translations measured 0.55-0.85 apart, unrelated questions 0.2-0.35.
SIMILARITY = 0.6


@dataclass(frozen=True, slots=True)
class Group:
    example: str  # the group's first sentence
    size: int
    texts: tuple[str, ...]  # distinct sentences, most frequent first (at most 10)
    reasons: tuple[tuple[str, int], ...]  # why its turns count as missed, with counts


def group_similar(turns: Sequence[MissedTurn], vectors: Vectors, *, similarity: float = SIMILARITY) -> list[Group]:
    """Groups of ``turns`` (``vectors`` row i is turn i's text), largest first."""
    heads: list[int] = []
    members: list[list[int]] = []
    for i in range(len(turns)):
        if heads:
            sims = vectors[heads] @ vectors[i]
            best = int(np.argmax(sims))
            if sims[best] >= similarity:
                members[best].append(i)
                continue
        heads.append(i)
        members.append([i])
    groups = []
    for head, group in zip(heads, members):
        texts = Counter(turns[i].text for i in group)
        reasons = Counter(turns[i].reason for i in group)
        groups.append(Group(turns[head].text, len(group), tuple(t for t, _ in texts.most_common(10)), tuple(reasons.most_common())))
    groups.sort(key=lambda g: -g.size)
    return groups
