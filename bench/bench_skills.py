"""Business skills: repair loop latency, renewal scan at scale, review ingest rate.

    python bench/bench_skills.py [--repairs 50] [--contracts 100000] [--reviews 2000] [--nlu-url URL]

Starts a private redis-server and the embedded MongoDB-protocol server (or uses
KEFU_TEST_REDIS_URL / KEFU_TEST_MONGO_URL), a real Rasa with the trained model (or the
one at ``--nlu-url``), the fake outside systems on loopback, and the gateway in process,
then measures:

* repair loop: a known customer's "我的XK-8800不制冷了" through the signed WeChat webhook
  until the fake WeChat received the reply and the QR image (NLU, form, lookups, ERP,
  matching, ServiceNow, DingTalk to-do, QR PNG, outbox): p50 / p99 (``--repairs 0``
  skips it, and Rasa with it);
* renewal scan over ``--contracts`` contracts ending over the next year (seeding not
  timed): time, reminders sent through the notification engine, MongoDB commands the
  process issued meanwhile (the scan's and the engine's, plus the outbox senders'),
  peak RSS of the process;
* reviews: ``ingest_and_process_many`` per second in batches of ``--review-batch`` (70 %
  late-delivery complaints answered with a coupon and a marketplace reply, 30 % good
  reviews) with MongoDB commands per review, and bare ``ingest_many``
  (``--contracts 0 --repairs 0`` measures the reviews alone).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from pymongo import InsertOne, monitoring  # noqa: E402

from bench.report import CommandCounter, load_average, peak_rss_mb, print_rows  # noqa: E402
from bot.app import build_app  # noqa: E402
from bot.config import settings_from_mapping  # noqa: E402
from channels.dingtalk.fake_api import FakeDingTalkAPI  # noqa: E402
from channels.wechat.fake_api import FakeWeChatAPI  # noqa: E402
from skills.connectors.fakes import FakeAmazon, FakeCoupons, FakeErp, FakeServiceNow, FakeShopee, FakeTemu  # noqa: E402
from skills.connectors.marketplace import Review  # noqa: E402
from skills.demo import load_demo  # noqa: E402
from skills.services import SKILL_SERVICES, SkillServices  # noqa: E402
from tests.harness import Harness, gateway_config  # noqa: E402
from tests.services import mongo_server, redis_server  # noqa: E402

DAY = 86_400.0


COMMANDS = CommandCounter()
SENDER_COLLECTIONS = ("messages", "dead_letters")
monitoring.register(COMMANDS)  # before any client exists: listeners are read at construction


async def serve(app: Any) -> str:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return str(server.make_url("")).rstrip("/")


async def run(args: argparse.Namespace, redis_url: str, mongo_url: str, nlu_url: str, data_dir: Path) -> list[tuple[str, str]]:
    fakes: dict[str, Any] = {
        "erp": FakeErp(), "servicenow": FakeServiceNow(), "dingtalk": FakeDingTalkAPI(), "coupons": FakeCoupons(),
        "amazon": FakeAmazon(), "shopee": FakeShopee(), "temu": FakeTemu(),
    }
    urls = {name: await serve(f.app()) for name, f in fakes.items()}
    wechat = FakeWeChatAPI()
    wechat_url = await serve(wechat.app())
    cfg = gateway_config(redis_url, mongo_url, wechat_url, workers=4)
    cfg["data_dir"] = str(data_dir)
    cfg["connectors"] = {
        **{n: {"base_url": urls[n]} for n in ("erp", "coupons", "amazon", "shopee", "temu", "servicenow")},
        "dingtalk_todo": {"base_url": urls["dingtalk"], "app_key": "k", "app_secret": "s", "union_id": "svc"},
    }
    cfg["nlu"] = {"enabled": True, "urls": [nlu_url], "autostart": False, "timeout_s": 5.0} if nlu_url else {"enabled": False}
    cfg["renewal"] = {"daily": False}  # the bench runs the scan itself
    cfg["reviews"] = {"pull_interval_s": 10**6, "process_interval_s": 10**6}
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(settings_from_mapping(cfg, env={}))))
    await client.start_server()
    rows: list[tuple[str, str]] = []
    try:
        h = Harness(client=client, fake=wechat)
        svc: SkillServices = client.app[SKILL_SERVICES]
        await load_demo(svc.db)
        engine = svc.notifier.engine
        assert engine is not None

        # -- repair loop -----------------------------------------------------------------
        lat: list[float] = []
        for i in range(args.repairs + 3 if args.repairs else 0):
            sender = f"oBench{i}"
            await svc.db["crm_customers"].update_one({"_id": "C-1001"}, {"$addToSet": {"identities": f"wechat:demo:{sender}"}})
            t0 = time.perf_counter()
            await h.say(sender, "我的XK-8800不制冷了")
            while len(wechat.sent_to(sender)) < 2:
                await asyncio.sleep(0.002)
            if i >= 3:  # the first ones warm Rasa, the pools and the templates
                lat.append(time.perf_counter() - t0)
        if lat:
            lat.sort()
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            rows.append(("repair loop p50 / p99 (text -> reply + QR)", f"{p50:.0f} ms / {p99:.0f} ms  (n={len(lat)})"))

        # -- renewal scan ----------------------------------------------------------------
        db = svc.db
        now = time.time()
        n_customers = max(1, args.contracts // 10)
        t_seed = time.perf_counter()
        batch: list[Any] = []
        for c in range(n_customers):
            batch.append(InsertOne({"_id": f"BC-{c}", "name": f"customer {c}", "identities": [f"wechat:demo:oBC{c}"], "registered_capital": (c % 50) * 500_000,
                                    "contacts": [{"role": "CTO", "email": f"cto{c}@example.cn"}]}))
            if len(batch) >= 5000:
                await db["crm_customers"].bulk_write(batch, ordered=False)
                batch = []
        if batch:
            await db["crm_customers"].bulk_write(batch, ordered=False)
            batch = []
        for k in range(args.contracts):
            batch.append(InsertOne({"_id": f"BK-{k}", "customer": f"BC-{k % n_customers}", "product": "maintenance", "kind": "maintenance",
                                    "start": now - 300 * DAY, "end": now + (k % 365) * DAY + 3600, "amount": 50_000 + (k % 40) * 50_000,
                                    "currency": "CNY", "past_contracts": k % 5, "sales_owner": {"name": "S", "union_id": "u"}}))
            if len(batch) >= 5000:
                await db["contracts"].bulk_write(batch, ordered=False)
                batch = []
        if batch:
            await db["contracts"].bulk_write(batch, ordered=False)
        seed_s = time.perf_counter() - t_seed
        await svc.renewals.put_rule("big", {"name": "big", "when": {"field": "amount", "op": ">", "value": 1_000_000},
                                            "then": [{"action": "notify_contact", "role": "CTO"}]})
        await svc.renewals.put_rule("legal", {"name": "legal", "when": {"all": [{"field": "customer.registered_capital", "op": "<", "value": 5_000_000},
                                                                               {"field": "past_contracts", "op": "<", "value": 3}]},
                                              "then": [{"action": "legal_review"}]})
        rss0 = peak_rss_mb()
        commands0, by0 = COMMANDS.count, COMMANDS.by_collection.copy()
        t0 = time.perf_counter()
        report = await svc.renewals.scan()
        scan_s = time.perf_counter() - t0
        commands = COMMANDS.count - commands0
        by = COMMANDS.by_collection - by0
        # The outbox senders deliver the reminders meanwhile and write a message record per
        # send (the conversation path's store writes); the rest is the scan's and the engine's.
        senders = sum(by[c] for c in SENDER_COLLECTIONS)
        per = max(1, report.sent)
        rows.append((f"renewal scan, {args.contracts:,} contracts", f"{scan_s:.1f} s  {'OK' if scan_s < 60 else 'OVER'} (< 60 s), {report.sent:,} reminders sent, {report.failed} failed  (seeding {seed_s:.0f} s, untimed)"))
        rows.append(("  MongoDB commands (whole process)", f"{commands:,}, {commands / per:.2f} per reminder"))
        rows.append(("  of which the scan and the engine", f"{commands - senders:,}, {(commands - senders) / per:.3f} per reminder  {'OK' if (commands - senders) / per < 0.1 else 'OVER'} (< 0.1)"))
        rows.append(("  by collection", ", ".join(f"{c or '-'} {n:,}" for c, n in by.most_common(8))))
        rows.append(("  rule actions", ", ".join(f"{k} {v:,}" for k, v in sorted(report.actions.items()))))
        rows.append(("  peak RSS (process, before -> after)", f"{rss0:.0f} -> {peak_rss_mb():.0f} MB"))
        commands0 = COMMANDS.count
        t0 = time.perf_counter()
        again = await svc.renewals.scan()
        rescan_s = time.perf_counter() - t0
        rows.append(("renewal rescan (nothing due)", f"{rescan_s:.2f} s  {'OK' if rescan_s < 2 else 'OVER'} (< 2 s), {again.sent} sent, {COMMANDS.count - commands0:,} commands"))

        rows += await bench_reviews(svc, fakes, args)
    finally:
        await client.close()
    return rows


async def bench_reviews(svc: SkillServices, fakes: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str]]:
    """Reviews in batches of ``--review-batch`` (as a pulled page, a push or an import
    file arrives): ingest + remedy per second with the MongoDB commands per review, bare
    ingest, and the same reviews again (all duplicates)."""
    texts = ["Arrived 4 days late with UPS", "物流太慢了，晚了三天，中通", "Still not arrived after 2 weeks, USPS", "Great, works well", "Love it", "顺丰 等了五天才到"]
    ratings = [1, 1, 2, 5, 5, 2]
    n, size = args.reviews, max(1, args.review_batch)

    def review(i: int) -> Review:
        j = i % len(texts)
        return Review("amazon", f"B{i}", ratings[j], texts[j], region="US" if j in (0, 2) else "CN")

    async def batches(make: Any, call: Any) -> tuple[float, int]:
        commands0, t0 = COMMANDS.count, time.perf_counter()
        for start in range(0, n, size):
            await call([make(i) for i in range(start, min(n, start + size))])
        return n / (time.perf_counter() - t0), COMMANDS.count - commands0

    proc_rate, proc_cmds = await batches(review, lambda rs: svc.reviews.ingest_and_process_many(rs, via="bench"))
    ingest_rate, _ = await batches(lambda i: Review("shopee", f"I{i}", 5, "ok"), lambda rs: svc.reviews.ingest_many(rs, via="bench"))
    dup_rate, _ = await batches(lambda i: Review("amazon", f"B{i}", 1, "x"), lambda rs: svc.reviews.ingest_and_process_many(rs, via="bench"))
    return [
        (f"reviews ingest+remedy, batches of {size}",
         f"{proc_rate:,.0f} /s  {'OK' if proc_rate >= 500 else 'UNDER'} (>= 500/s)  ({len(fakes['amazon'].replies):,} replies, "
         f"{len(fakes['coupons'].issued):,} coupons)  {load_average()}"),
        ("  MongoDB commands (whole process)", f"{proc_cmds:,}, {proc_cmds / max(1, n):.2f} per review"),
        ("reviews ingest only / duplicate", f"{ingest_rate:,.0f} /s / {dup_rate:,.0f} /s  {load_average()}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repairs", type=int, default=50)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--review-batch", type=int, default=200, help="reviews per batch (a pulled page, a push, an import chunk)")
    parser.add_argument("--nlu-url", help="a running Rasa (default: start one with the trained model)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for sub in ("redis", "mongo", "data"):
            (tmpdir / sub).mkdir()
        redis_url = stack.enter_context(redis_server(tmpdir / "redis"))
        # As Kefu connects to its embedded server: retryable writes off (see bot/embedded.py).
        mongo_url = stack.enter_context(mongo_server(tmpdir / "mongo")).rstrip("/") + "/kefu_bench?retryWrites=false"
        nlu_url = args.nlu_url or ""
        if not nlu_url and args.repairs:
            from bot.nlu import service
            from bot.nlu.settings import NluSettings

            settings = NluSettings.from_mapping({"data_path": str(ROOT / "nlu_data"), "venv_path": str(ROOT / "var/rasa/venv"), "models_path": str(ROOT / "var/rasa/models")})
            model = service.latest_model(settings)
            if model is None:
                sys.exit("no trained Rasa model: run `kefu nlu train` or pass --nlu-url")
            servers = stack.enter_context(service.running_servers(settings, model, [service.free_port()]))
            nlu_url = servers[0].url
        rows = asyncio.run(run(args, redis_url, mongo_url, nlu_url, tmpdir / "data"))
    print_rows(rows)


if __name__ == "__main__":
    main()
