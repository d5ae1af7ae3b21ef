"""``kefu nlu ...``: install, train, serve, query and evaluate the Rasa NLU service.

The main ``kefu`` CLI calls :func:`register`; ``python -m bot.nlu.cli <command>`` runs
the same commands on their own. All of this is synchronous CLI code: the blocking
subprocess work in :mod:`bot.nlu.service` is allowed here.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

from bot.nlu import service
from bot.nlu.client import NluClient
from bot.nlu.errors import NluError
from bot.nlu.settings import NluSettings

DEFAULT_CONFIG = "kefu.yml"
#: Held-out macro F1 the model must reach; ``nlu test`` exits 1 below them.
TARGET_INTENT_F1 = 0.95
TARGET_ENTITY_F1 = 0.95


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``nlu`` command and its sub-commands to the main CLI's subparsers."""
    parser = subparsers.add_parser("nlu", help="Rasa NLU service: install, train, serve, parse, test")
    _add_commands(parser)


def _add_commands(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        dest="nlu_config",
        default=None,
        help=f"kefu config file whose `nlu:` section is read (default: {DEFAULT_CONFIG} if present)",
    )
    sub = parser.add_subparsers(dest="nlu_command", metavar="COMMAND", required=True)

    p = sub.add_parser("install", help="create Rasa's Python 3.10 venv from the pinned requirements")
    p.add_argument("--force", action="store_true", help="rebuild even if the venv is current")
    p.set_defaults(func=_guarded(cmd_install))

    p = sub.add_parser("train", help="train the NLU model (skipped when the data hash is unchanged)")
    p.add_argument("--force", action="store_true", help="train even if a model for this data exists")
    p.set_defaults(func=_guarded(cmd_train))

    p = sub.add_parser("serve", help="run Rasa's HTTP API on loopback until interrupted")
    p.add_argument("--port", type=int, default=None, help="port (default: from the first nlu url)")
    p.add_argument("--model", type=Path, default=None, help="model .tar.gz (default: current data's)")
    p.set_defaults(func=_guarded(cmd_serve))

    p = sub.add_parser("parse", help="parse one text through the running server(s), print JSON")
    p.add_argument("text")
    p.add_argument("--url", action="append", default=None, help="Rasa URL (repeatable)")
    p.set_defaults(func=_guarded(cmd_parse))

    p = sub.add_parser("test", help="held-out evaluation: intent accuracy/macro F1, entity P/R/F1")
    p.add_argument("--training-fraction", type=float, default=0.8)
    p.add_argument("--seed", type=int, action="append", default=None,
                   help="split seed (default 42); repeat to average several splits, since "
                        "one split's macro F1 moves by about 0.02 with the seed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--min-intent-f1", type=float, default=TARGET_INTENT_F1)
    p.add_argument("--min-entity-f1", type=float, default=TARGET_ENTITY_F1,
                   help="required F1 for device_model")
    p.set_defaults(func=_guarded(cmd_test))

    p = sub.add_parser("gate", help="held-out comparison without/with new examples; --switch serves the new model")
    p.add_argument("--new", type=Path, default=None, help="the new examples (default: DATA/trainer_labels.yml)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--training-fraction", type=float, default=0.8)
    p.add_argument("--tolerance", type=float, default=0.0, help="largest drop of a gated metric that still passes")
    p.add_argument("--switch", action="store_true",
                   help="on a pass, train on all data and have the running servers load it (PUT /model)")
    p.add_argument("--propose", action="store_true",
                   help="on a pass, train on all data and leave the switch to a trainer (console: /admin/trainer/model)")
    p.set_defaults(func=_guarded(cmd_gate))


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn our errors into a message and exit code 2 instead of a traceback."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (NluError, ValueError, subprocess.CalledProcessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def load_settings(args: argparse.Namespace) -> NluSettings:
    """Settings handed down by the main CLI, else the `nlu:` section of the config file."""
    given = getattr(args, "nlu_settings", None)
    if isinstance(given, NluSettings):
        return given
    # --config after `nlu`, else a top-level --config of the main CLI, else kefu.yml.
    explicit = getattr(args, "nlu_config", None) or getattr(args, "config", None)
    path = Path(explicit or DEFAULT_CONFIG)
    if not path.exists():
        if explicit:
            raise NluError(f"config file {path} not found", code="no_config")
        return NluSettings.from_mapping(None)
    import yaml  # only needed when a config file exists

    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise NluError(f"{path}: expected a mapping at the top level", code="bad_config")
    return NluSettings.from_mapping(doc.get("nlu"))


def cmd_install(args: argparse.Namespace) -> int:
    """``nlu install``."""
    service.install(load_settings(args), force=args.force)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``nlu train``."""
    model = service.train(load_settings(args), force=args.force)
    print(model)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``nlu serve``: install/train if needed, run until SIGINT/SIGTERM."""
    settings = load_settings(args)
    port = args.port
    if port is None:
        from urllib.parse import urlsplit

        port = urlsplit(settings.urls[0]).port or 5005
    service.install(settings)
    model = args.model or service.train(settings)
    server = service.RasaServer(settings, model, port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell that starts us in the background ignores SIGINT.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.start()
        server.wait_ready(out=sys.stderr)
        print(f"nlu: serving {model.name} on {server.url} (Ctrl-C to stop; log {server.log_path})",
              file=sys.stderr)
        rc = server.wait()
        print(f"nlu: rasa exited with {rc}; see {server.log_path}", file=sys.stderr)
        return rc or 1
    except KeyboardInterrupt:
        print("\nnlu: stopping", file=sys.stderr)
        return 0
    finally:
        server.stop()


def cmd_parse(args: argparse.Namespace) -> int:
    """``nlu parse TEXT``: one parse through :class:`NluClient`, as JSON on stdout."""
    settings = load_settings(args)
    urls = tuple(args.url) if args.url else settings.urls

    async def run() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            client = NluClient(session, urls, timeout_s=max(settings.timeout_s, 10.0))
            result = await client.parse(args.text)
        return {
            "text": result.text,
            "intent": result.intent,
            "confidence": round(result.confidence, 4),
            "entities": [
                {"entity": e.entity, "value": e.value, "start": e.start, "end": e.end,
                 "confidence": None if e.confidence is None else round(e.confidence, 4)}
                for e in result.entities
            ],
            "ranking": [[n, round(c, 4)] for n, c in result.ranking[:5]],
        }

    print(json.dumps(asyncio.run(run()), ensure_ascii=False, indent=2))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """``nlu test``: train on a stratified split, evaluate on the held-out rest.

    Uses Rasa's own tools (``rasa data split nlu``, ``rasa test nlu``) so the numbers
    mean what Rasa's documentation says they mean. The split model is cached by the
    hash of the split, like the main model. With several seeds, each split is trained
    and tested in turn, and the targets apply to the mean.
    """
    settings = load_settings(args)
    service.install(settings)
    seeds: list[int] = args.seed or [42]
    summaries = [_evaluate_split(settings, seed, args.training_fraction) for seed in seeds]
    intent_f1 = sum(s["intent"]["macro_f1"] for s in summaries) / len(summaries)
    device_f1 = sum(s["entities"].get("device_model", {"f1": 0.0})["f1"] for s in summaries) / len(summaries)
    if args.json:
        out: dict[str, Any] = summaries[0] if len(summaries) == 1 else {
            "splits": [{"seed": seed, **s} for seed, s in zip(seeds, summaries)],
            "mean": {"intent_macro_f1": intent_f1, "device_model_f1": device_f1},
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for seed, summary in zip(seeds, summaries):
            if len(summaries) > 1:
                print(f"== split seed {seed}")
            print(format_summary(summary))
        if len(summaries) > 1:
            print(f"\nmean of {len(summaries)} splits: intent macro F1 {intent_f1:.4f}   "
                  f"device_model F1 {device_f1:.4f}")
    if intent_f1 < args.min_intent_f1 or device_f1 < args.min_entity_f1:
        print(f"below target: intent macro F1 >= {args.min_intent_f1}, "
              f"device_model F1 >= {args.min_entity_f1}", file=sys.stderr)
        return 1
    return 0


def _evaluate_split(settings: NluSettings, seed: int, training_fraction: float) -> dict[str, Any]:
    """Split the examples with ``seed``, train on one part, test on the other."""
    work = settings.state_path / "eval" / f"split-{seed}-{training_fraction}"
    train_file, test_file = _split(settings, settings.data_path / "data", work, seed, training_fraction)
    model = service.train(settings, nlu=[train_file])
    return _test_model(settings, model, test_file, work / "results")


def _split(settings: NluSettings, data: Path, work: Path, seed: int, training_fraction: float) -> tuple[Path, Path]:
    """Rasa's stratified split of ``data`` into ``work``: (training file, held-out file)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The synonyms, regexes and lookups live in their own file: they always belong to
    # the training side, never to the held-out examples.
    subprocess.run(
        [str(service.rasa_executable(settings)), "data", "split", "nlu", "--nlu", str(data),
         "--training-fraction", str(training_fraction), "--random-seed", str(seed),
         "--out", str(work)],
        check=True, env=service.rasa_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return work / "training_data.yml", work / "test_data.yml"


def _test_model(settings: NluSettings, model: Path, test_file: Path, results: Path) -> dict[str, Any]:
    print(f"nlu: evaluating {model.name} on {test_file}", file=sys.stderr)
    proc = subprocess.run(
        [str(service.rasa_executable(settings)), "test", "nlu", "--nlu", str(test_file), "--model", str(model),
         "--out", str(results), "--no-plot", "--successes"],
        env=service.rasa_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout.decode(errors="replace")[-4000:])
        raise NluError(f"rasa test nlu failed (exit {proc.returncode})", code="test_failed")
    return summarize(results)


def cmd_gate(args: argparse.Namespace) -> int:
    """``nlu gate``: the new examples' held-out comparison; on a pass, train and switch
    (``--switch``) or leave the switch to a trainer (``--propose``). Each run's figures are
    recorded for the console either way."""
    import time

    from bot.nlu.gate import GateRecord, base_data, loaded_model, record_path, save_record, switch_model

    settings = load_settings(args)
    service.install(settings)
    data = settings.data_path / "data"
    new = args.new or data / "trainer_labels.yml"
    if not new.is_file():
        raise NluError(f"no new examples at {new}: run `kefu kb export-labels` first", code="no_examples")
    work = settings.state_path / "gate" / f"split-{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    base = base_data(data, [new], work / "base")
    train_file, test_file = _split(settings, base, work / "split", args.seed, args.training_fraction)
    before = _test_model(settings, service.train(settings, nlu=[train_file]), test_file, work / "before")
    after = _test_model(settings, service.train(settings, nlu=[train_file, new]), test_file, work / "after")
    record = GateRecord(at=time.time(), new=new.name, seed=args.seed, tolerance=args.tolerance, before=before, after=after)
    comparison = record.comparison
    print(f"held-out comparison without and with {new} ({before['intent']['support']} sentences, seed {args.seed}):")
    print(comparison.table())
    where = record_path(settings.state_path)
    if not comparison.passed:
        save_record(where, record)
        print("not switching: the new examples make the model worse on held-out sentences", file=sys.stderr)
        return 1
    if not (args.switch or args.propose):
        save_record(where, record)
        print("passed; run again with --propose (a trainer switches on the console) or --switch to train on all data")
        return 0
    from bot.nlu.training import training_hash

    model = service.train(settings)
    record = replace(record, model=str(model.resolve()), data_hash=training_hash(settings))
    save_record(where, record)
    if not args.switch:
        print(f"passed; {model.name} waits for a trainer to switch it in (/admin/trainer/model)")
        return 0
    for url in settings.urls:
        try:
            switch_model(url, model)
            print(f"{url}: now serving {loaded_model(url)}")
        except OSError as exc:
            print(f"{url}: not switched ({exc}); it keeps its model", file=sys.stderr)
            return 1  # the record stays unswitched: the console can try again
    save_record(where, record.switched("kefu nlu gate --switch", time.time(), settings.urls))
    return 0


def summarize(results: Path) -> dict[str, Any]:
    """Intent and per-entity scores from ``rasa test nlu``'s report files."""
    intent = json.loads((results / "intent_report.json").read_text())
    summary: dict[str, Any] = {
        "intent": {
            "accuracy": float(intent["accuracy"]),
            "macro_f1": float(intent["macro avg"]["f1-score"]),
            "weighted_f1": float(intent["weighted avg"]["f1-score"]),
            "support": int(intent["macro avg"]["support"]),
            "per_intent": {
                k: round(float(v["f1-score"]), 4)
                for k, v in intent.items()
                if isinstance(v, dict) and "f1-score" in v and not k.endswith(" avg")
            },
        },
        "entities": {},
        "errors": [],
    }
    entity_file = results / "DIETClassifier_report.json"
    if entity_file.exists():
        for name, row in json.loads(entity_file.read_text()).items():
            if isinstance(row, dict) and "f1-score" in row and name not in ("no_entity",):
                summary["entities"][name] = {
                    "precision": float(row["precision"]),
                    "recall": float(row["recall"]),
                    "f1": float(row["f1-score"]),
                    "support": int(row["support"]),
                }
    errors_file = results / "intent_errors.json"
    if errors_file.exists():
        summary["errors"] = [
            {"text": e["text"], "expected": e["intent"], "got": e["intent_prediction"]["name"]}
            for e in json.loads(errors_file.read_text())
        ]
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The evaluation summary as a readable table."""
    i = summary["intent"]
    lines = [
        f"intent   accuracy {i['accuracy']:.4f}   macro F1 {i['macro_f1']:.4f}   "
        f"weighted F1 {i['weighted_f1']:.4f}   (held-out n={i['support']})",
        "",
        f"{'entity':<22}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>9}",
    ]
    for name, row in sorted(summary["entities"].items()):
        lines.append(f"{name:<22}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
                     f"{row['support']:>9}")
    if summary["errors"]:
        lines += ["", "intent errors:"]
        lines += [f"  {e['expected']:>20} -> {e['got']:<20} {e['text']}" for e in summary["errors"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot.nlu.cli``."""
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.cli", description=__doc__)
    _add_commands(parser)
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
