"""A knowledge entry: the ways customers ask, and the answer in Chinese and English.

Entries cross every boundary of this package (import file, JSON API, store, retrieval,
conversation) as the frozen :class:`Entry`. Validation happens once, in
:func:`entry_from_json`, so an import file and an API body are held to the same rules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from knowledge.errors import InvalidEntry

LANGUAGES = ("zh", "en")
MAX_TEXT = 4000
MAX_QUESTIONS = 50
CONTENT_FIELDS = ("questions", "answers", "title", "tags", "valid_from", "valid_to", "owner")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Answer:
    """One language's answer: ``short`` for a brief reply, ``full`` for the whole of it."""

    short: str
    full: str

    def text(self, detail: str) -> str:
        """The version the customer's detail level asks for (brief -> short)."""
        return self.short if detail == "brief" or not self.full else self.full


@dataclass(frozen=True, slots=True)
class Entry:
    """A knowledge entry. ``version`` counts its saved changes (0: never saved)."""

    id: str
    questions: tuple[str, ...]
    answers: Mapping[str, Answer]
    title: str = ""
    tags: tuple[str, ...] = ()
    valid_from: str = ""  # ISO date, inclusive; "" = always
    valid_to: str = ""  # ISO date, inclusive; "" = open-ended
    owner: str = ""
    version: int = 0
    updated_at: float = 0.0
    updated_by: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def answer(self, language: str) -> Answer:
        """The answer in ``language``, else the other language's."""
        if language in self.answers:
            return self.answers[language]
        return next(iter(self.answers.values()))

    def forms(self) -> tuple[str, ...]:
        """The texts retrieval compares a question with: the question forms, the title
        (each side of a ``zh / en`` title) and the short answers. An answer's words
        often meet a question the forms did not foresee ("do you take WeChat Pay")."""
        titles = tuple(t.strip() for t in self.title.split(" / ") if t.strip())
        return tuple(dict.fromkeys((*self.questions, *titles, *(a.short for a in self.answers.values()))))

    def valid_on(self, day: dt.date) -> bool:
        iso = day.isoformat()
        return (not self.valid_from or self.valid_from <= iso) and (not self.valid_to or iso <= self.valid_to)

    def label(self, language: str) -> str:
        """How the bot names the entry to the customer: the title's side in their
        language when it reads ``中文 / English``."""
        zh, sep, en = self.title.partition(" / ")
        if sep:
            return (zh if language == "zh" else en).strip()
        return self.title or self.questions[0]

    def content(self) -> dict[str, Any]:
        """The fields a writer decides (not version or bookkeeping): what a change compares."""
        return {
            "questions": list(self.questions),
            "answers": {k: {"short": a.short, "full": a.full} for k, a in sorted(self.answers.items())},
            "title": self.title,
            "tags": list(self.tags),
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "owner": self.owner,
        }

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.content(), "version": self.version, "updated_at": self.updated_at, "updated_by": self.updated_by}


def entry_from_json(data: Any, *, entry_id: str | None = None) -> Entry:
    """An entry from its JSON form (API body, import row, stored document).

    Raises:
        InvalidEntry: naming the first field that is wrong.
    """
    if not isinstance(data, Mapping):
        raise InvalidEntry("entry: expected an object")
    raw_id = entry_id if entry_id is not None else data.get("id", data.get("_id"))
    if not isinstance(raw_id, str) or not _ID.match(raw_id):
        raise InvalidEntry("id: 1-100 letters, digits or _.:- (starting with a letter or digit)")
    questions = _strings(data.get("questions"), "questions", limit=MAX_QUESTIONS)
    if not questions:
        raise InvalidEntry("questions: at least one question form is needed")
    answers_raw = data.get("answers")
    if not isinstance(answers_raw, Mapping) or not answers_raw:
        raise InvalidEntry("answers: an object with zh and/or en answers is needed")
    answers: dict[str, Answer] = {}
    for lang, value in answers_raw.items():
        if lang not in LANGUAGES:
            raise InvalidEntry(f"answers.{lang}: unknown language (known: {', '.join(LANGUAGES)})")
        if isinstance(value, str):
            value = {"short": value}
        if not isinstance(value, Mapping):
            raise InvalidEntry(f"answers.{lang}: expected an object with short and full")
        short = _text(value.get("short"), f"answers.{lang}.short")
        full = _text(value.get("full") or "", f"answers.{lang}.full", required=False)
        if not short:
            short = full
        if not short:
            raise InvalidEntry(f"answers.{lang}: short or full is needed")
        answers[str(lang)] = Answer(short, full or short)
    valid_from = _date(data.get("valid_from"), "valid_from")
    valid_to = _date(data.get("valid_to"), "valid_to")
    if valid_from and valid_to and valid_to < valid_from:
        raise InvalidEntry("valid_to: before valid_from")
    version = data.get("version", 0)
    return Entry(
        id=raw_id,
        questions=tuple(questions),
        answers=answers,
        title=_text(data.get("title") or "", "title", required=False),
        tags=tuple(_strings(data.get("tags"), "tags", limit=MAX_QUESTIONS)),
        valid_from=valid_from,
        valid_to=valid_to,
        owner=_text(data.get("owner") or "", "owner", required=False),
        version=version if isinstance(version, int) and not isinstance(version, bool) else 0,
        updated_at=float(data.get("updated_at") or 0.0),
        updated_by=str(data.get("updated_by") or ""),
    )


def _text(value: Any, name: str, *, required: bool = True) -> str:
    if not isinstance(value, str):
        if required or value is not None:
            raise InvalidEntry(f"{name}: expected text")
        return ""
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise InvalidEntry(f"{name}: longer than {MAX_TEXT} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEntry(f"{name}: not valid Unicode text") from None
    return text


def _strings(value: Any, name: str, *, limit: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidEntry(f"{name}: expected a list of at most {limit} texts")
    out = [_text(v, f"{name}[{i}]") for i, v in enumerate(value)]
    return [s for s in dict.fromkeys(out) if s]


def _date(value: Any, name: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise InvalidEntry(f"{name}: expected a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InvalidEntry(f"{name}: {value!r} is not a date") from None
