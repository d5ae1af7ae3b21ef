"""Rendering notifications and digests: jinja2 templates per topic, detail, language, channel.

Templates live in ``preferences/templates/<lang>/``. For a message ``name`` on a channel
the first that exists wins: ``<lang>/<name>.<channel>.j2``, ``<lang>/<name>.j2``, then the
same in Chinese. Every template receives ``detail`` (brief / standard / full), ``channel``
and ``rich`` (false on channels whose class says ``compact``, e.g. DingTalk, whose work
notifications are read on a phone lock screen), plus ``data``; ``channel_name(name,
language)`` gives a channel's display name from its class.
A deployment can override any template from its own folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import jinja2

from preferences.model import BUILTIN_BOOK, ChannelBook, zone

_BUILTIN = Path(__file__).parent / "templates"


def progress_bar(percent: Any, width: int = 10) -> str:
    """``▓▓▓▓▓░░░░░ 50%`` for a percentage; clamps to 0..100."""
    try:
        p = max(0, min(100, int(float(percent))))
    except (TypeError, ValueError):
        return ""
    filled = round(p * width / 100)
    return "▓" * filled + "░" * (width - filled) + f" {p}%"


def local_time(ts: Any, tz: str = "Asia/Shanghai", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Unix seconds (or an ISO string, passed through) as local wall-clock time."""
    if isinstance(ts, (int, float)):
        return dt.datetime.fromtimestamp(ts, zone(tz)).strftime(fmt)
    return str(ts)


class Renderer:
    """All templates read once at construction (call it off the event loop)."""

    def __init__(self, override_dir: Path | None = None, *, book: ChannelBook = BUILTIN_BOOK) -> None:
        self.compact = frozenset(name for name, cls in book.classes.items() if cls.compact)
        names = {name: dict(cls.display_name) for name, cls in book.classes.items()}
        sources = _read_tree(_BUILTIN)
        if override_dir is not None:
            sources.update(_read_tree(override_dir))
        self.names = names
        #: The templates as shipped and configured, before any edited in the console.
        self.base: dict[str, str] = sources
        self._use(sources)

    def _use(self, sources: dict[str, str]) -> None:
        self.sources = sources
        # Names the template set: text rendered ahead of time (a digest's, as it fills)
        # is reused only by a renderer with the very same templates.
        self.fingerprint = hashlib.sha256(repr(sorted(sources.items())).encode()).hexdigest()[:16]
        env = jinja2.Environment(
            loader=jinja2.DictLoader(sources),
            autoescape=False,  # chat text; the email channel escapes for its HTML part
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["bar"] = progress_bar
        env.filters["localtime"] = local_time
        names = self.names
        env.globals["channel_name"] = lambda name, language="zh": names.get(name, {}).get(language, name)
        # The sources never change while an environment lives, so the choice among
        # candidates is remembered: jinja2 caches templates it found, not the misses, and
        # each miss is a TemplateNotFound raised and caught (most of a digest's rendering time).
        self._chosen: dict[tuple[str, str, str], jinja2.Template] = {}
        self.env = env

    def edited(self, overrides: dict[str, str]) -> None:
        """Use the shipped templates with ``overrides`` (name -> source) on top: the
        templates marketers edited in the console. Compiling happens here, once."""
        self._use({**self.base, **overrides})

    def variant(self, changes: dict[str, str]) -> Renderer:
        """A renderer like this one with some templates changed (a preview)."""
        other = object.__new__(Renderer)
        other.compact, other.names, other.base = self.compact, self.names, self.base
        other._use({**self.sources, **changes})
        return other

    def template(self, name: str, language: str, channel: str = "") -> jinja2.Template:
        """The template that renders message ``name`` for ``language`` and ``channel``."""
        key = (name, language, channel)
        found = self._chosen.get(key)
        if found is None:
            candidates: list[str | jinja2.Template] = []
            for lang in dict.fromkeys((language, "zh")):
                if channel:
                    candidates.append(f"{lang}/{name}.{channel}.j2")
                candidates.append(f"{lang}/{name}.j2")
            found = self._chosen[key] = self.env.select_template(candidates)
        return found

    def render(self, name: str, language: str, channel: str = "", /, **context: Any) -> str:
        """Render message ``name`` for ``language`` and ``channel`` (see module doc)."""
        template = self.template(name, language, channel)
        text = template.render(channel=channel, rich=channel not in self.compact, language=language, **context)
        # Collapse the blank lines that skipped template blocks leave behind.
        lines = [ln.rstrip() for ln in text.strip().splitlines()]
        out: list[str] = []
        for ln in lines:
            if ln or (out and out[-1]):
                out.append(ln)
        return "\n".join(out)


def _read_tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.j2"))}
