"""Word tables in Chinese and English: ``{key: (zh, en)}``, looked up per language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGUAGES = ("zh", "en")


def lookup(table: Mapping[str, tuple[str, str]], key: str, language: str, **values: Any) -> str:
    """The text for ``key`` in ``language``; a key missing from the table shows as itself."""
    pair = table.get(key)
    if pair is None:
        return key
    template = pair[0] if language == "zh" else pair[1]
    return template.format(**values) if values else template
