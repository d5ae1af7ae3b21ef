"""Reply templates: jinja2, one file per message and language, never strings in code.

The core's own live in ``bot/templates/<lang>/<name>.j2``, each skill's beside the skill
(``skills/<skill>/templates/``), handed over by the composition root; a deployment can
override any of them from its own folder (``templates.dir`` in kefu.yml) without
touching the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from bot.language import DEFAULT


class Templates:
    """All templates are read into memory once, at startup (call it off the event loop),
    so rendering a reply never touches the disk."""

    def __init__(self, dirs: Sequence[Path] = (), override_dir: Path | None = None) -> None:
        sources = _read_tree(Path(str(resources.files("bot") / "templates")))
        for folder in dirs:
            sources.update(_read_tree(folder))
        if override_dir is not None:
            sources.update(_read_tree(override_dir))  # a deployment's own wording wins
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(sources),
            autoescape=False,  # chat text, not HTML; email channels use their own env
            undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not a blank
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def render(self, name: str, language: str, /, **context: Any) -> str:
        """Render ``<language>/<name>.j2``, falling back to the default language."""
        template = self.env.get_or_select_template([f"{language}/{name}.j2", f"{DEFAULT}/{name}.j2"])
        return template.render(**context).strip()


def _read_tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.j2"))
    }
