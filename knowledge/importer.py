"""Knowledge entries from the files people keep them in: Markdown or CSV.

Markdown: one ``##`` heading per entry, ``id | title``; then ``key: value`` lines. A line
without a known key continues the value above it (a long answer may span lines)::

    ## warranty-xk8800 | XK-8800 保修政策 / XK-8800 warranty
    tags: XK-8800, warranty
    owner: 售后服务部
    valid_from: 2026-01-01
    q: XK-8800保修几年？
    q: How long is the XK-8800 warranty?
    zh: 整机保修三年，压缩机保修五年。
    zh_full: 自安装验收之日起，整机保修三年……
    en: Three years on the whole unit, five on the compressor.
    en_full: From the day of installation ...

CSV (UTF-8, a header row): ``id, title, questions, tags, owner, valid_from, valid_to,
zh, zh_full, en, en_full``; several questions or tags in one cell are separated by ``|``.

A malformed entry is reported with where it starts and why, and the others still load.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.entry import Entry, entry_from_json
from knowledge.errors import InvalidEntry, KnowledgeError

_KEY = re.compile(r"^(q|question|tags|owner|valid_from|valid_to|zh|zh_full|en|en_full)\s*[:：]\s?(.*)$", re.I)
ANSWER_KEYS = ("zh", "zh_full", "en", "en_full")


@dataclass
class Parsed:
    entries: list[Entry] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def parse_file(path: Path) -> Parsed:
    """Entries from a ``.md``/``.markdown`` or ``.csv`` file (blocking: read off the loop)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"{path}: cannot read it as UTF-8 text ({exc.__class__.__name__})") from None
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return parse_markdown(text)
    if suffix == ".csv":
        return parse_csv(text)
    raise KnowledgeError(f"{path}: expected a .md or .csv file")


def parse_markdown(text: str) -> Parsed:
    out = Parsed()
    for line_no, raw in _sections(text):
        _collect(out, f"line {line_no}", raw)
    return out


def parse_csv(text: str) -> Parsed:
    out = Parsed()
    reader = csv.DictReader(io.StringIO(text))
    missing = {"id", "questions"} - set(reader.fieldnames or ())
    if missing:
        raise KnowledgeError(f"CSV header lacks {', '.join(sorted(missing))}")
    for row_no, row in enumerate(reader, start=2):
        raw: dict[str, Any] = {
            "id": (row.get("id") or "").strip(),
            "title": row.get("title") or "",
            "questions": _split(row.get("questions")),
            "tags": _split(row.get("tags"), commas=True),
            "owner": row.get("owner") or "",
            "valid_from": (row.get("valid_from") or "").strip(),
            "valid_to": (row.get("valid_to") or "").strip(),
            **{k: row.get(k) or "" for k in ANSWER_KEYS},
        }
        _collect(out, f"row {row_no}", raw)
    return out


def _collect(out: Parsed, where: str, raw: dict[str, Any]) -> None:
    answers = {
        lang: {"short": raw.get(lang, "").strip(), "full": raw.get(f"{lang}_full", "").strip()}
        for lang in ("zh", "en")
        if raw.get(lang, "").strip() or raw.get(f"{lang}_full", "").strip()
    }
    data = {k: v for k, v in raw.items() if k not in ANSWER_KEYS}
    try:
        out.entries.append(entry_from_json({**data, "answers": answers}))
    except InvalidEntry as exc:
        out.errors.append((f"{where} ({raw.get('id') or 'no id'})", exc.message))


def _sections(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    current: dict[str, Any] | None = None
    start = 0
    last_key = ""
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("## "):
            if current is not None:
                yield start, current
            entry_id, _, title = stripped[3:].partition("|")
            current = {"id": entry_id.strip(), "title": title.strip(), "questions": [], "tags": []}
            start, last_key = line_no, ""
            continue
        if current is None or not stripped or stripped.startswith("#"):
            last_key = "" if not stripped else last_key
            continue
        m = _KEY.match(stripped.lstrip("-* "))
        if m:
            key, value = m.group(1).lower(), m.group(2).strip()
            if key in ("q", "question"):
                current["questions"].append(value)
                last_key = ""
            elif key == "tags":
                current["tags"] += _split(value, commas=True)
                last_key = ""
            else:
                current[key] = value
                last_key = key
        elif last_key in ANSWER_KEYS:
            joiner = "" if _ends_han(current[last_key]) else " "
            current[last_key] = (current[last_key] + joiner + stripped).strip()
    if current is not None:
        yield start, current


def _split(cell: str | None, *, commas: bool = False) -> list[str]:
    parts = re.split(r"[|,，]" if commas else r"\|", cell or "")
    return [p.strip() for p in parts if p.strip()]


def _ends_han(text: str) -> bool:
    return bool(text) and "\u3000" <= text[-1] <= "\u9fff"
