"""Benchmark of the customer portal: page render times for a customer with a long history.

Run: ``python bench/bench_portal.py`` (needs redis-server and the test extra). It starts
its own Redis and MongoDB-protocol server and one gateway process (``--role web``),
seeds one customer with 1,000 repair tickets, 10,000 notifications, 30 contracts,
500 messages (50 voice notes), 5 colleagues and 3 rules, signs in through a real
one-time link, then renders each portal page ``--renders`` times in a row and prints
p50/p95/max per page and the Redis commands each render cost. Last, the signed PDF
summary for a customer of that size: drawing (font included) and signing, in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import ACCOUNT, start_stores, stop  # noqa: E402
from bench.bench_console import redis_calls, run_gateway  # noqa: E402
from bench.report import print_rows  # noqa: E402
from tests.services import free_port  # noqa: E402

OPENID = "o-bench-portal"
DAY = 86_400.0


def gateway_config(port: int, redis_url: str, mongo_url: str) -> dict[str, Any]:
    return {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": redis_url,
        "mongo_url": mongo_url,
        "nlu": {"enabled": False},
        "speech": {"enabled": False},
        "channels": {"wechat": [{**ACCOUNT, "api_base_url": "http://127.0.0.1:9"}]},
    }


async def seed(redis_url: str, mongo_url: str, tickets: int, notifications: int) -> tuple[str, str, float]:
    """The customer and their history, written as the skills and the engine write it;
    returns (customer id, a ticket id, the opening time of the 980th newest ticket)."""
    from pymongo import AsyncMongoClient

    from bot.store import channel_identity
    from preferences.store import PreferenceStore

    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_url)
    db = client.get_default_database()
    prefs = PreferenceStore(db)
    identity = channel_identity("wechat", ACCOUNT["account"], OPENID)
    await prefs.customer_for("wechat", ACCOUNT["account"], OPENID, language="zh", actor=None, via="chat")
    customer = identity
    now = time.time()
    steps = [{"at": now - 3600 + i, "step": s, "by": "bot", "ok": True, "detail": {}} for i, s in enumerate(("opened", "lookup", "match", "stock", "incident", "todo", "qr"))]
    docs = [{
        "_id": f"bench-ticket-{i}", "number": f"R2026-{i:06d}", "customer": identity, "pref_customer": customer,
        "conversation": f"wechat:demo:{OPENID}", "status": ("new", "assigned", "on_the_way", "done")[i % 4],
        "created_at": now - i * 600, "device_model": "XK-8800", "fault": "不制冷", "address": "上海 B 栋",
        "engineer": {"id": "E-7", "name": "王师傅", "qualification": "高级"}, "eta": "14:30", "timeline": steps,
    } for i in range(tickets)]
    for start in range(0, len(docs), 500):
        await db["tickets"].insert_many(docs[start:start + 500])
    topics = ("repair", "renewal", "review", "account")
    notes = [{
        "_id": f"bench-n-{i}", "customer": customer, "topic": topics[i % 4], "importance": "normal",
        "data": {"ticket_id": f"R2026-{i:06d}", "status": "已派单", "amount": f"CNY {(i % 50) * 40_000:,}"},
        "template": topics[i % 4], "created_at": now - i * 60, "action": "send", "reason": "immediate", "channels": ["wechat"],
        "detail": "standard", "language": "zh", "deliver_at": None, "period": None, "status": "enqueued", "tried": ["wechat"],
    } for i in range(notifications)]
    for start in range(0, len(notes), 1000):
        await db["notifications"].insert_many(notes[start:start + 1000])
    await db["crm_customers"].insert_one({"_id": "C-BENCH", "identities": [identity], "pref_customer": customer})
    await db["contracts"].insert_many([
        {"_id": f"K-BENCH-{i}", "customer": "C-BENCH", "product": f"产品 {i}", "start": now - 300 * DAY, "end": now + (i + 1) * 10 * DAY,
         "amount": 100_000 + i * 50_000, "currency": "CNY"} for i in range(30)
    ])
    await db["messages"].insert_many([
        {"_id": f"bench-m-{i}", "direction": "in", "channel": "wechat", "account": ACCOUNT["account"], "customer": identity, "sender": OPENID,
         "conversation": f"wechat:demo:{OPENID}", "kind": "voice" if i % 10 == 0 else "text", "ts": now - i * 30, "text": "你好",
         **({"media": {"media_id": f"M{i}", "format": "amr"}, "transcript": {"text": "空调不制冷", "source": "whisper", "model": "whisper-base"}} if i % 10 == 0 else {})}
        for i in range(500)
    ])
    await db["portal_members"].insert_many([
        {"_id": f"bench-member-{i}", "customer": customer, "contact": f"c{i}@example.cn", "kind": "email", "modules": ["contracts"],
         "invited_by": customer, "invited_at": now - i, "last_seen": None, "revoked_at": None} for i in range(5)
    ])
    await db["pref_rules"].insert_many([
        {"_id": f"bench-rule-{i}", "customer": customer, "topic": "renewal", "condition": "amount_over", "value": str(500_000 * (i + 1)),
         "email": f"cto{i}@example.cn", "created_by": customer, "created_at": now} for i in range(3)
    ])
    await client.close()
    return customer, "bench-ticket-0", now - min(980, tickets - 1) * 600


async def sign_in(http: Any, base: str, redis_url: str, customer: str) -> str:
    """Open a one-time link and continue, as the customer does; returns the path of a
    second link, unused, whose "continue" page the bench renders."""
    from redis.asyncio import Redis

    from portal.links import Grant, SignInLinks

    redis = Redis.from_url(redis_url)
    links = SignInLinks(redis, public_url=base)
    link, spare = await links.issue(Grant(customer)), await links.issue(Grant(customer))
    await redis.aclose()
    async with http.get(link, allow_redirects=False) as resp:
        assert resp.status == 200, await resp.text()
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await resp.text())
    assert csrf is not None
    async with http.post(link, data={"_csrf": csrf.group(1)}, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
    return spare.removeprefix(base)


async def render(
    base: str, redis_url: str, customer: str, pages: dict[str, str], renders: int, first: dict[str, float]
) -> dict[str, tuple[list[float], float, int]]:
    """Each page's render times, Redis commands per render and size; ``first`` gets the
    first render of each (the data page's counts are computed there, then reused)."""
    import aiohttp

    out: dict[str, tuple[list[float], float, int]] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        pages = {"sign-in link (continue page)": await sign_in(http, base, redis_url, customer), **pages}
        for name, path in pages.items():
            t0 = time.perf_counter()
            async with http.get(base + path) as resp:
                assert resp.status == 200, (path, resp.status, await resp.text())
                await resp.read()
            first[name] = (time.perf_counter() - t0) * 1000
            for _ in range(4):  # warm-up
                async with http.get(base + path) as resp:
                    await resp.read()
            times: list[float] = []
            before = await redis_calls(redis_url)
            size = 0
            for _ in range(renders):
                t0 = time.perf_counter()
                async with http.get(base + path) as resp:
                    size = len(await resp.read())
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = (times, (await redis_calls(redis_url) - before) / renders, size)
    return out


def summary_pdf(runs: int) -> tuple[list[float], int]:
    """Milliseconds to draw and sign the PDF summary of a customer like the seeded one
    (50 voice notes, 5 colleagues, 3 rules, 30 activity lines), and its size."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from portal.members import Member, Module
    from portal.summary import SummaryFacts, find_font, render_pdf
    from preferences.model import Topic, resolve
    from preferences.rules import Rule

    now = time.time()
    facts = SummaryFacts(
        made_at=now, prefs=resolve("bench", [{}]), counts={"profile": 1, "messages": 500, "voice_notes": 50, "tickets": 1_000, "notifications": 10_000},
        retention_days=365,
        voice=[{"ts": now - i * 600, "channel": "wechat", "transcript": {"source": "whisper", "model": "base"}, "media": {}} for i in range(50)],
        rules=[Rule(f"r{i}", "bench", Topic.RENEWAL, "amount_over", "1000000", f"cto{i}@example.cn", "bench", now) for i in range(3)],
        members=[Member(f"m{i}", "bench", f"p{i}@example.cn", "email", (Module.CONTRACTS,), "bench", now, now, None) for i in range(5)],
        audit=[{"at": now - i, "action": "preferences.change", "member": ""} for i in range(30)],
        key_fingerprint="0000", key_url="http://127.0.0.1/portal/signing-key.pem",
    )
    key, font = Ed25519PrivateKey.generate(), find_font()
    times, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        pdf = render_pdf(facts, font)
        key.sign(pdf)
        times.append((time.perf_counter() - t0) * 1000)
        size = len(pdf)
    return times, size


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=100, help="renders of each page")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kefu-bench-portal-") as tmp_name:
        tmp = Path(tmp_name)
        procs, redis_url, mongo_url = start_stores(tmp)
        mongo_url += "?retryWrites=false"  # see NOTES: the embedded server slows down otherwise
        gateway = None
        try:
            port = free_port()
            gateway = run_gateway(tmp, "portal", gateway_config(port, redis_url, mongo_url), "web")  # indexes first
            print(f"seeding {args.tickets} tickets and {args.notifications} notifications ...", file=sys.stderr)
            customer, ticket, deep = asyncio.run(seed(redis_url, mongo_url, args.tickets, args.notifications))
            pages = {
                "home": "/portal/", "tickets (page 1)": "/portal/tickets", "tickets (older than the 980th)": f"/portal/tickets?before={deep!r}",
                "ticket": f"/portal/tickets/{ticket}", "ticket QR": f"/portal/tickets/{ticket}/qr.png",
                "contracts": "/portal/contracts", "notify": "/portal/notify", "rules (preview over 100)": "/portal/rules",
                "data": "/portal/data", "people": "/portal/people",
            }
            first: dict[str, float] = {}
            results = asyncio.run(render(f"http://127.0.0.1:{port}", redis_url, customer, pages, args.renders, first))
        finally:
            if gateway is not None:
                stop(gateway)
            for proc in procs:
                stop(proc)
    rows = [("customer", f"{args.tickets:,} tickets, {args.notifications:,} notifications, 30 contracts, 500 messages"),
            ("renders per page", str(args.renders))]
    worst = 0.0
    for name, (times, redis_per, size) in results.items():
        worst = max(worst, p(times, 0.95))
        rows.append((name, f"p50 {statistics.median(times):6.1f} ms  p95 {p(times, 0.95):6.1f} ms  max {max(times):6.1f} ms  "
                           f"first {first[name]:6.1f} ms  redis {redis_per:.1f}/render  {size / 1024:.1f} KiB"))
    rows.append(("worst p95", f"{worst:.1f} ms (target < 300 ms)"))
    pdf_times, pdf_size = summary_pdf(5)
    rows.append(("summary PDF (draw + sign)", f"p50 {statistics.median(pdf_times):6.1f} ms  max {max(pdf_times):6.1f} ms  "
                                              f"{pdf_size / 1024:.1f} KiB  (5 runs; in a worker thread, at most summary_per_hour)"))
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
