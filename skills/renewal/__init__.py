"""Renewal reminders, rules and the renewal chat skill."""

from pathlib import Path

#: This package's reply templates (``<lang>/<name>.j2``), loaded by the composition root.
TEMPLATES = Path(__file__).parent / "templates"
