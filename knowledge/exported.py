"""The reviewed export on disk: the one owner of the file ``kefu kb export-labels``
writes into the NLU data folder (``nlu_data/data/trainer_labels.yml``).

The CLI writes it whole; a revert in the console or the API takes one label's block
out of it again, so a sentence a reverted label added does not train the next model.
Only that block goes (it is found by its ``# source: trainer label <id>`` line): what a
reviewer changed elsewhere in the file stays as they left it. Every change is written
to a temporary file and renamed over the old one under an exclusive lock on a file
beside it, so two processes (a web process reverting while the CLI exports) never
interleave and Rasa never reads half a file.
"""

from __future__ import annotations

import asyncio
import fcntl
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.files import write_atomically

_SOURCE = re.compile(r"^# source: trainer label ([0-9a-zA-Z]+)\b")
_INTENT = re.compile(r"^- intent:", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TakenOut:
    text: str
    examples: tuple[str, ...]  # the example lines removed, as written (annotated)


def take_out(text: str, label_id: str) -> TakenOut:
    """``text`` without the block headed by label ``label_id``'s source line.

    A block is its source line, the ``- intent:`` line after it and every indented or
    blank line up to the next line at the left margin.
    """
    kept: list[str] = []
    removed: list[str] = []
    skipping = header = False
    for line in text.splitlines(keepends=True):
        if skipping:
            at_margin = bool(line.strip()) and not line[0].isspace()
            if header and line.startswith("- "):
                header = False
                continue
            if not at_margin:
                stripped = line.strip()
                if stripped.startswith("- "):
                    removed.append(stripped[2:].strip())
                continue
            skipping = False
        m = _SOURCE.match(line)
        if m and m.group(1) == label_id:
            skipping = header = True
            continue
        kept.append(line)
    return TakenOut("".join(kept), tuple(removed))


def empty_as_list(text: str) -> str:
    """``nlu:`` with no block left under it as an empty list: Rasa's schema refuses a null."""
    if _INTENT.search(text):
        return text
    return re.sub(r"^nlu:[ \t]*$", "nlu: []", text, count=1, flags=re.MULTILINE)


class ExportedFile:
    """One exported file (``path``), written and edited under a lock shared by processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def write(self, text: str) -> None:
        await asyncio.to_thread(self._locked, lambda _old: text)

    async def take_out(self, label_id: str) -> tuple[str, ...]:
        """Remove label ``label_id``'s block; the examples it held (none: not in the file)."""
        found: list[tuple[str, ...]] = []

        def edit(old: str) -> str | None:
            result = take_out(old, label_id)
            found.append(result.examples)
            return empty_as_list(result.text) if result.text != old else None

        await asyncio.to_thread(self._locked, edit)
        return found[0] if found else ()

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def _locked(self, edit: Callable[[str], str | None]) -> None:
        """Apply ``edit`` to the file's text under the lock; None leaves the file alone."""
        with self._lock():
            new = edit(self._read())
            if new is not None:
                write_atomically(self.path, new)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.path.parent / f".{self.path.name}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
