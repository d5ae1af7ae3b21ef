"""``kefu kb``: import a knowledge base, measure its answers.

``kefu kb import FILE`` reads Markdown or CSV (see :mod:`knowledge.importer`) into the
configured MongoDB; entries whose content did not change are left alone, so importing
the same file twice changes nothing. A malformed entry is reported with its line and
the rest still load (exit 1 then).

``kefu kb test`` answers a labelled set of questions from a knowledge base, in memory,
and prints answer accuracy, the confident-wrong rate and no-answer recall
(:mod:`knowledge.evaluation`); ``--sweep`` prints them over a range of thresholds.

``kefu kb export-labels`` writes the trainer's intent labels as Rasa YAML into the NLU
data folder (``nlu_data/data/trainer_labels.yml``; ``--out -`` prints it instead), for a
person to review (``git diff``) before ``kefu nlu gate`` trains and compares. Only
approved labels are written (a label made in the console waits for a second person).
``--set FILE`` also writes the approved ``entry`` and ``no_answer`` labels as a labelled
set, so ``kefu kb test --set FILE`` measures the base on what customers actually asked.
The voice transcripts a trainer accepted go out as the speech vocabulary
(``nlu_data/speech_vocabulary.txt``, ``--vocabulary``; see :mod:`knowledge.vocabulary`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

# At import (CLI start): tqdm reads its package metadata from disk when imported.
from tqdm import tqdm  # type: ignore[import-untyped]

from knowledge.errors import KnowledgeError
from knowledge.evaluation import DEMO_BASE, DEMO_SET


def register(subparsers: Any) -> None:
    kb = subparsers.add_parser("kb", help="the knowledge base the bot answers from")
    sub = kb.add_subparsers(dest="kb_command", required=True)
    imp = sub.add_parser("import", help="import entries from a Markdown or CSV file (idempotent)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    imp.set_defaults(func=cmd_import)
    test = sub.add_parser("test", help="answer a labelled question set and print accuracy figures")
    test.add_argument("--base", type=Path, default=DEMO_BASE, help="knowledge base file (default: the demo base)")
    test.add_argument("--set", dest="labelled", type=Path, default=DEMO_SET, help="labelled questions (YAML)")
    test.add_argument("--date", help="answer as on this day, YYYY-MM-DD (entries have validity dates)")
    test.add_argument("--sweep", action="store_true", help="also print the figures over a range of thresholds")
    test.add_argument("--errors", action="store_true", help="list the questions answered wrongly or not at all")
    test.add_argument("--offer-floor", type=float, help="the score an entry needs to be offered in a clarifying "
                      "question beside an unsure best one (default: the threshold)")
    test.add_argument("--folds", type=int, default=0,
                      help="also choose threshold and margin on all folds but one and score the one left out, in turn")
    test.set_defaults(func=cmd_test)
    exp = sub.add_parser("export-labels", help="write the trainer's intent labels as Rasa NLU data, for review")
    exp.add_argument("--data", type=Path, default=Path("nlu_data/data"), help="the NLU training data folder")
    exp.add_argument("--set", dest="labelled_set", type=Path, default=None,
                     help="also write the approved entry and no-answer labels here, as a labelled set for `kefu kb test --set`")
    exp.add_argument("--out", default="", help=f"file to write (default: DATA/trainer_labels.yml; - for stdout)")
    exp.add_argument("--vocabulary", type=Path, default=None,
                     help="where the names from accepted transcript corrections go (default: DATA/../speech_vocabulary.txt)")
    exp.set_defaults(func=cmd_export_labels)


def cmd_import(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from knowledge.importer import parse_file

    settings = load_settings(args.config)
    try:
        parsed = parse_file(args.file)
    except KnowledgeError as exc:
        print(f"kefu kb import: {exc.message}", file=sys.stderr)
        return 2
    for where, why in parsed.errors:
        print(f"{args.file}: {where}: {why}", file=sys.stderr)
    report = asyncio.run(_import(settings, parsed.entries, progress=not args.no_progress))
    for entry_id, why in report.failed:
        print(f"{args.file}: {entry_id}: {why}", file=sys.stderr)
    print(f"{report.created} created, {report.changed} changed, {report.unchanged} unchanged, "
          f"{len(parsed.errors) + len(report.failed)} failed")
    return 1 if parsed.errors or report.failed else 0


async def _import(settings: Any, entries: list[Any], *, progress: bool) -> Any:
    from bot.stores import close_stores, open_stores
    from knowledge.encoder import UniversalSentenceEncoder
    from knowledge.store import KnowledgeStore

    redis, mongo, embedded = await open_stores(settings)
    encoder = UniversalSentenceEncoder()
    try:
        store = KnowledgeStore(mongo.get_default_database("kefu"), redis, encoder)
        await store.ensure_indexes()
        with tqdm(total=len(entries), unit="entry", disable=not progress, file=sys.stderr) as bar:
            return await store.save_many(entries, actor="kefu kb import", progress=bar.update)
    finally:
        encoder.close()
        await close_stores(redis, mongo, embedded)


def cmd_test(args: argparse.Namespace) -> int:
    from knowledge.encoder import UniversalSentenceEncoder
    from knowledge.evaluation import build_index, default_thresholds, load_set, run, score, sweep
    from knowledge.importer import parse_file
    from knowledge.lexical import Words
    from knowledge.retrieval import Tuning

    try:
        parsed = parse_file(args.base)
        labelled = load_set(args.labelled)
        day = dt.date.fromisoformat(args.date) if args.date else dt.date.today()
    except (KnowledgeError, ValueError) as exc:
        print(f"kefu kb test: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    known = {e.id for e in parsed.entries}
    unknown = sorted({item.entry for item in labelled if item.entry and item.entry not in known})
    if unknown:
        print(f"kefu kb test: the labelled set names entries the base lacks: {', '.join(unknown)}", file=sys.stderr)
        return 2
    encoder = UniversalSentenceEncoder()
    try:
        index = build_index(parsed.entries, encoder, Words())
        vectors = encoder.encode_blocking([item.question for item in labelled])
    finally:
        encoder.close()
    tuning = Tuning() if args.offer_floor is None else Tuning(offer_floor=args.offer_floor)
    outcomes = run(index, labelled, vectors, tuning, day)
    s = score(outcomes)
    answered_for = {item.entry for item in labelled if item.entry}
    print(f"knowledge base {args.base.name}: {len(parsed.entries)} entries; labelled set {args.labelled.name}: "
          f"{s.questions} questions over {len(answered_for)} entries, {s.unanswerable} without an answer")
    print(f"threshold {tuning.threshold}, margin {tuning.margin}, lexical weight {tuning.lexical_weight}, day {day}")
    print(f"answer accuracy     {s.accuracy:7.1%}  ({s.correct}/{s.answerable} answerable questions answered right)")
    print(f"confident wrong     {s.confident_wrong_rate:7.1%}  ({s.confident_wrong}/{s.questions} questions answered wrongly)")
    print(f"no-answer recall    {s.no_answer_recall:7.1%}  ({s.silent_unanswerable}/{s.unanswerable} left to the fallback)")
    # A clarification is no answer: the figures above count it as left to the fallback.
    print(f"clarified           {s.clarified / s.questions if s.questions else 0.0:7.1%}  ({s.clarified}/{s.questions} questions "
          f"offered a choice instead; the right entry among those offered for {s.clarified_right}/{s.clarified_answerable} "
          f"answerable ones, offer floor {tuning.offer_floor})")
    if args.sweep:
        print(f"\n{'threshold':>9} {'accuracy':>9} {'conf.wrong':>10} {'no-answer':>9}")
        for threshold, row in sweep(index, labelled, vectors, replace(tuning), day, default_thresholds()):
            print(f"{threshold:>9.2f} {row.accuracy:>9.1%} {row.confident_wrong_rate:>10.1%} {row.no_answer_recall:>9.1%}")
    if args.folds:
        _print_cross_validation(outcomes, tuning, args.folds)
    if args.errors:
        print()
        for o in outcomes:
            if o.answered != o.labelled.entry:
                print(f"{o.labelled.question!r}: expected {o.labelled.entry}, answered {o.answered} "
                      f"(best {o.best} {o.score:.3f}" + (f"; offered {', '.join(o.offered)})" if o.offered else ")"))
    return 0


def _print_cross_validation(outcomes: list[Any], tuning: Any, folds: int) -> None:
    from knowledge.evaluation import CONFIDENT_WRONG_BUDGET, cross_validate

    cv = cross_validate(outcomes, tuning, folds=folds)
    s = cv.held_out
    thresholds = sorted(t.threshold for t in cv.chosen)
    margins = sorted(t.margin for t in cv.chosen)
    print(f"\nheld-out folds ({folds} folds x {len(cv.chosen) // folds} shuffles; threshold and margin chosen on the "
          f"other folds with confident wrong <= {CONFIDENT_WRONG_BUDGET:.0%}):")
    print(f"  chosen threshold {thresholds[0]:.2f}-{thresholds[-1]:.2f}, margin {margins[0]:.2f}-{margins[-1]:.2f}")
    print(f"answer accuracy     {s.accuracy:7.1%}  ({s.correct}/{s.answerable})")
    print(f"confident wrong     {s.confident_wrong_rate:7.1%}  ({s.confident_wrong}/{s.questions})")
    print(f"no-answer recall    {s.no_answer_recall:7.1%}  ({s.silent_unanswerable}/{s.unanswerable})")


def cmd_export_labels(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from knowledge.export import FILE_NAME, known_examples
    from knowledge.vocabulary import FILE_NAME as VOCABULARY

    settings = load_settings(args.config)
    out = None if args.out == "-" else Path(args.out) if args.out else args.data / FILE_NAME
    if not args.data.is_dir():
        print(f"kefu kb export-labels: no NLU data folder {args.data}", file=sys.stderr)
        return 2
    known = known_examples(args.data, leave_out=out)
    vocabulary = None if out is None else args.vocabulary or args.data.parent / VOCABULARY
    export = asyncio.run(_export(settings, known, out, args.labelled_set, vocabulary))
    for what, why in export.skipped:
        print(f"skipped {what!r}: {why}", file=sys.stderr)
    if out is None:
        sys.stdout.write(export.text)
    else:
        print(f"{out}: {export.examples} examples from {len(export.labels)} labels; "
              "review it, then `kefu nlu gate` to train and compare")
    return 0


async def _export(
    settings: Any, known: dict[str, str], out: Path | None, labelled_set: Path | None = None, vocabulary: Path | None = None,
) -> Any:
    """Render the intent labels; with ``out``, write the file and mark them exported."""
    from bot.stores import close_stores, open_stores
    from knowledge import vocabulary as speech_vocabulary
    from knowledge.export import check, render, render_set
    from knowledge.exported import ExportedFile
    from knowledge.labels import TrainerLabels
    from knowledge.transcripts import CorrectedTranscripts

    redis, mongo, embedded = await open_stores(settings)
    try:
        labels = TrainerLabels(mongo.get_default_database("kefu"))
        now = dt.datetime.now(dt.timezone.utc)
        if labelled_set is not None:
            text, count = render_set(await labels.approved("entry", "no_answer"), written_at=now)
            await asyncio.to_thread(labelled_set.write_text, text, encoding="utf-8")
            print(f"{labelled_set}: {count} labelled questions; `kefu kb test --set {labelled_set}`", file=sys.stderr)
        export = render(await labels.intents(), known, written_at=now)
        check(export.text)
        if out is not None:
            await ExportedFile(out).write(export.text)
            await labels.mark_exported(export.labels)
        if vocabulary is not None:
            transcripts = CorrectedTranscripts(mongo.get_default_database("kefu"))
            configured = settings.section("speech").get("vocabulary") or ()
            names = speech_vocabulary.render(await transcripts.accepted(),
                                             configured=[configured] if isinstance(configured, str) else configured)
            await ExportedFile(vocabulary).write(names.text)
            await transcripts.mark_exported(names.messages)
            print(f"{vocabulary}: {len(names.terms)} product names from {len(names.messages)} accepted transcript corrections",
                  file=sys.stderr)
        return export
    finally:
        await close_stores(redis, mongo, embedded)
