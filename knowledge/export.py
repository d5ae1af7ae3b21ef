"""Trainer labels as Rasa NLU training data, for a person to review before training.

:func:`render` turns every ``intent`` label into Rasa YAML: one block per label, headed
by a comment naming its source (label id, who labelled, when, from the trainer's
groups), entity values annotated where they occur (``[XK-8800](device_model)``).
Sentences already in the training data are left out (Rasa would see them twice, or
under two intents); so are labels for an intent the data does not have (no skill would
act on it) and sentences with Rasa's annotation brackets in them. Each is reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.exported import empty_as_list
from knowledge.labels import TrainerLabel

#: Where the export goes by default, inside the NLU data folder ``kefu nlu train`` reads.
FILE_NAME = "trainer_labels.yml"
_BRACKETS = re.compile(r"[\[\]{}()]")


@dataclass
class Export:
    text: str = ""
    examples: int = 0
    labels: list[str] = field(default_factory=list)  # ids of the labels written
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sentence or label, why)


def known_examples(data_dir: Path, *, leave_out: Path | None = None) -> dict[str, str]:
    """Example text -> intent, from the Rasa YAML files under ``data_dir``."""
    found: dict[str, str] = {}
    for path in sorted(data_dir.rglob("*.yml")):
        if leave_out is not None and path.resolve() == leave_out.resolve():
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in doc.get("nlu") or []:
            if isinstance(block, dict) and "intent" in block:
                for line in str(block.get("examples") or "").splitlines():
                    line = line.strip()
                    if line.startswith("- "):
                        found[_plain(line[2:].strip())] = str(block["intent"])
    return found


def _plain(example: str) -> str:
    """An annotated example as the customer wrote it."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}", lambda m: m.group(1) or m.group(2) or "", example)


def annotate(text: str, entities: Mapping[str, str]) -> str:
    """``text`` with the first occurrence of each entity value marked up for Rasa."""
    spans: list[tuple[int, int, str]] = []
    for name, value in entities.items():
        at = text.find(value)
        if at >= 0 and not any(s < at + len(value) and at < e for s, e, _ in spans):
            spans.append((at, at + len(value), name))
    out, pos = [], 0
    for start, end, name in sorted(spans):
        out += [text[pos:start], f"[{text[start:end]}]({name})"]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def render(labels: Iterable[TrainerLabel], known: Mapping[str, str], *, written_at: dt.datetime) -> Export:
    intents = set(known.values())
    export = Export()
    lines = [
        'version: "3.1"',
        "",
        "# Sentences the bot missed, labelled by a trainer (POST /api/kb/labels) and written",
        f"# by `kefu kb export-labels` on {written_at:%Y-%m-%d %H:%M} UTC. Review, then `kefu nlu gate`.",
        "nlu:",
    ]
    seen = dict(known)
    for label in labels:
        if label.intent not in intents:
            export.skipped.append((f"label {label.id}", f"intent {label.intent!r} is not in the training data"))
            continue
        examples: list[str] = []
        for text in label.texts:
            if _BRACKETS.search(text):
                export.skipped.append((text, "has brackets Rasa reads as annotation"))
            elif text in seen:
                export.skipped.append((text, f"already an example of {seen[text]}"))
            else:
                seen[text] = label.intent
                examples.append(annotate(text, label.entities))
        if not examples:
            continue
        when = dt.datetime.fromtimestamp(label.at, dt.timezone.utc)
        lines += [
            f"# source: trainer label {label.id} by {label.by or 'unknown'} on {when:%Y-%m-%d}, from missed turns",
            f"- intent: {label.intent}",
            "  examples: |",
            *(f"    - {e}" for e in examples),
        ]
        export.labels.append(label.id)
        export.examples += len(examples)
    export.text = empty_as_list("\n".join(lines) + "\n")
    return export


def render_set(labels: Iterable[TrainerLabel], *, written_at: dt.datetime) -> tuple[str, int]:
    """Approved ``entry`` and ``no_answer`` labels as a labelled set for ``kefu kb test
    --set`` (each sentence with the entry that answers it, or none); (text, questions)."""
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for label in labels:
        for text in label.texts:
            if text not in seen:
                seen.add(text)
                questions.append({"q": text, "entry": label.entry if label.kind == "entry" else None, "label": label.id})
    header = (f"# Questions the bot missed, labelled by a trainer and approved, written by\n"
              f"# `kefu kb export-labels --set` on {written_at:%Y-%m-%d %H:%M} UTC. `kefu kb test --set` reads it.\n")
    return header + yaml.safe_dump({"questions": questions}, allow_unicode=True, sort_keys=False), len(questions)


def check(text: str) -> Sequence[Any]:
    """The rendered file read back as YAML (raises on a file Rasa could not read)."""
    doc = yaml.safe_load(text)
    blocks = doc.get("nlu") or []
    if not isinstance(blocks, list):
        raise ValueError("nlu: expected a list")
    return blocks
