"""Kefu's skills: what the bot does with a customer's turn and the jobs behind it."""

from pathlib import Path

#: This package's reply templates (``<lang>/<name>.j2``), loaded by the composition root.
TEMPLATES = Path(__file__).parent / "templates"
