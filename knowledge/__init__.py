"""Answers from the company's own knowledge, retrieved on the premises.

``entry`` is the value object, ``store`` owns the MongoDB collections, ``importer``
reads Markdown and CSV, ``encoder`` holds the multilingual sentence encoder,
``lexical`` and ``retrieval`` find entries, ``skill`` answers in the conversation,
``missed`` collects turns the bot handled poorly, ``api`` and ``cli`` are the ways in,
``evaluation`` measures answers against a labelled set. ``build_knowledge`` wires the
parts for the composition root.
"""

from pathlib import Path

#: This package's reply templates (``<lang>/<name>.j2``), loaded by the composition root.
TEMPLATES = Path(__file__).parent / "templates"
