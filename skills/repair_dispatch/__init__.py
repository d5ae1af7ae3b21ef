"""Repair dispatch: from "my XK-8800 is broken" to a ticket, an engineer and an ETA."""

from pathlib import Path

#: This package's reply templates (``<lang>/<name>.j2``), loaded by the composition root.
TEMPLATES = Path(__file__).parent / "templates"
