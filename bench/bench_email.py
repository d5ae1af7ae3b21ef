"""Benchmark of email intake: mails/s fetched, parsed, threaded and queued from IMAP.

Run: ``python bench/bench_email.py`` (needs dovecot and redis-server on PATH, see
.ci/install-email.sh, and the test extra installed). It starts dovecot from a generated
config, fills a Maildir with 5,000 customer mails (a third with a small attachment,
stored to GridFS), starts its own Redis and MongoDB-protocol server, and runs the email
channel's real intake (lock, UID cursor, UID FETCH in batches, parse, thread lookup,
dedup + XADD) until every mail is queued. One row per fetch batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from bot.queue import InboundQueue  # noqa: E402
from bot.store import MessageStore  # noqa: E402
from bot.tokens import TokenCache  # noqa: E402
from channels.base import ChannelContext  # noqa: E402
from channels.email.channel import EmailChannel  # noqa: E402
from channels.email.simulator import customer_mail  # noqa: E402
from tests.email.servers import dovecot_server  # noqa: E402
from tests.services import mongo_server, redis_server  # noqa: E402

USERS = {"support": "bench-pw"}


async def run_once(redis_url: str, mongo_url: str, imap: dict[str, Any], batch: int, count: int) -> tuple[float, int]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    db = mongo.get_default_database("kefu_bench")
    await mongo.drop_database(db.name)
    queue = InboundQueue(redis, "kefu:inbound", dedup_ttl_s=3600, claim_idle_ms=60_000)
    async with aiohttp.ClientSession() as http:
        ctx = ChannelContext(http=http, redis=redis, tokens=TokenCache(redis), enqueue=queue.enqueue, store=MessageStore(db))
        section = {"account": "bench", "address": "support@kefu.test", "imap": imap, "smtp": {"host": "127.0.0.1", "port": 9, "ssl": False}, "initial": "all", "batch": batch, "poll_s": 0.2}
        channel = EmailChannel.from_settings(section, ctx)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(channel.run_background(stop))
        while channel.intake.handed_over < count:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.wait_for(task, 30)
    queued = int(await redis.xlen("kefu:inbound"))
    await redis.aclose()
    await mongo.close()
    return elapsed, queued


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--batches", default="50,200")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kefu-bench-mail-") as tmp_name, dovecot_server(USERS) as dovecot:
        tmp = Path(tmp_name)
        print(f"filling the mailbox with {args.mails} mails ...", file=sys.stderr)
        size = 0
        for i in range(args.mails):
            attachments = (("photo.jpg", "image/jpeg", bytes(range(256)) * 16),) if i % 3 == 0 else ()
            _, raw = customer_mail(f"customer{i % 700}@example.com", "support@kefu.test", f"第 {i} 封：我的 XK-8800 不制冷了，请安排师傅。\n\n> 旧内容\n", attachments=attachments)
            size += len(raw)
            dovecot.deliver("support", raw)
        with redis_server(tmp / "redis") if (tmp / "redis").mkdir() is None else None as redis_url, mongo_server(tmp / "mongo") if (tmp / "mongo").mkdir() is None else None as mongo_url:  # type: ignore[union-attr]
            for batch in (int(b) for b in args.batches.split(",")):
                elapsed, queued = asyncio.run(run_once(redis_url, f"{mongo_url}/kefu_bench", dovecot.imap_section("support"), batch, args.mails))
                rows.append((batch, elapsed, queued))
    print()
    print(f"Email intake from dovecot (IMAP on loopback): {args.mails} mails, {size / 1e6:.1f} MB, 1 in 3 with a 4 KB attachment to GridFS")
    print(f"{'batch':>6} {'seconds':>8} {'mails/s':>8} {'queued':>7}")
    for batch, elapsed, queued in rows:
        print(f"{batch:>6} {elapsed:>8.1f} {args.mails / elapsed:>8.0f} {queued:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
