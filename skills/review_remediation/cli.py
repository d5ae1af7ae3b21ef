"""``kefu reviews import FILE.csv``: bring in reviews exported from a marketplace.

Columns: ``marketplace, review_id, rating, text, order_id, buyer, region, language``.
Each review is ingested exactly as a webhook push or a pull would be, in batches of
:data:`IMPORT_BATCH` rows, so importing a file twice, or a review the gateway already
pulled, answers nothing twice. Without the running
gateway's notification engine, replies go to the marketplace only; reviews whose reply
could not be sent stay pending for the gateway's retry job.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# At import (CLI start): tqdm reads its package metadata from disk when imported.
from tqdm import tqdm  # type: ignore[import-untyped]

IMPORT_BATCH = 500  # rows stored with one insert_many and remedied together


def register(subparsers: Any) -> None:
    reviews = subparsers.add_parser("reviews", help="marketplace reviews")
    sub = reviews.add_subparsers(dest="reviews_command", required=True)
    imp = sub.add_parser("import", help="import reviews from a CSV file (idempotent)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    imp.set_defaults(func=cmd_import)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def cmd_import(args: argparse.Namespace) -> int:
    from bot.config import load_settings

    settings = load_settings(args.config)
    try:
        rows = _read_rows(args.file)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    counts = asyncio.run(import_rows(settings, rows, progress=not args.no_progress))
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing imported")
    return 0 if not counts.get("invalid") else 1


async def import_rows(settings: Any, rows: list[dict[str, str]], *, progress: bool = True) -> Counter[str]:
    import aiohttp

    from bot.stores import close_stores, open_stores
    from bot.templates import Templates
    from skills import review_remediation
    from skills.review_remediation.service import review_from_row
    from skills.notifier import Notifier
    from skills.repair_dispatch.tickets import Tickets
    from skills.services import build_services

    redis, mongo, embedded = await open_stores(settings)
    counts: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession() as http:
            db = mongo.get_default_database("kefu")
            templates = await asyncio.to_thread(Templates, [review_remediation.TEMPLATES])
            svc = build_services(
                settings, db, redis, http, settings.http.public_url, templates=templates, notifier=Notifier(None), tickets=Tickets(db)
            )
            await svc.reviews.ensure_indexes()
            bar = tqdm(total=len(rows), unit="review", disable=not progress, file=sys.stderr)
            for start in range(0, len(rows), IMPORT_BATCH):
                batch = []
                for i, row in enumerate(rows[start : start + IMPORT_BATCH], start=start + 2):  # line 1 is the header
                    try:
                        batch.append(review_from_row(row))
                    except ValueError as exc:
                        counts["invalid"] += 1
                        print(f"line {i}: {exc}", file=sys.stderr)
                for outcome in await svc.reviews.ingest_and_process_many(batch, via="csv"):
                    counts[outcome.status] += 1
                bar.update(min(IMPORT_BATCH, len(rows) - start))
            bar.close()
            await svc.reviews.announcer.flush()  # the last batch's announcement, before Redis closes
    finally:
        await close_stores(redis, mongo, embedded)
    return counts
