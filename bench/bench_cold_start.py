"""Restart `kefu run` under steady traffic; per message, the time to its first real answer.

    python bench/bench_cold_start.py [--interval 2] [--before 10] [--after 90]

Private redis-server and MongoDB-protocol server, a fake WeChat API in this process,
and `kefu run` with `nlu.autostart: true`, so that the gateway starts (and on restart
restarts) Rasa itself, the way a single-process installation does. One message from a
new customer every ``--interval`` seconds, each needing NLU, from ``--before`` seconds
before the restart until ``--after`` seconds after it. While the gateway is down the
sender retries every second, as WeChat does; a message's clock starts at its first try.

Prints one line per message (sent at, relative to the restart; seconds to the first
reply that is not the "busy" holding reply; whether a holding reply came first) and a
summary: the NLU load time of the new process (its start to /readyz answering 200) and
the longest wait. Target: no wait above the load time plus 5 s, no message with only a
holding reply. Needs a trained model (`kefu nlu install && kefu nlu train`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import ACCOUNT, start, stop  # noqa: E402
from bench.gateway_stack import start_stores  # noqa: E402
from tests.services import free_port  # noqa: E402

TEXTS = ("where is my repair?", "查一下我的维修进度", "我的合同什么时候到期", "今天天气怎么样")
BUSY = ("系统正忙", "busy right now")


@dataclass
class Sent:
    sender: str
    text: str
    first_try: float
    accepted: float = 0.0
    answered: float = 0.0
    holding: bool = False
    replies: list[str] = field(default_factory=list)


async def send(session: Any, port: int, item: Sent, msg_id: int) -> None:
    import aiohttp

    from channels.wechat.simulator import signed_request, text_xml

    while True:
        query, body = signed_request(ACCOUNT, text_xml(item.sender, item.text, msg_id))
        try:
            async with session.post(f"http://127.0.0.1:{port}/wechat/{ACCOUNT['account']}", params=query, data=body) as resp:
                if resp.status == 200:
                    item.accepted = time.monotonic()
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(1.0)  # the platform retries


def watch(fake: Any, sent: list[Sent]) -> None:
    now = time.monotonic()
    for item in sent:
        texts = [s["text"]["content"] for s in fake.sent_to(item.sender) if s.get("msgtype") == "text"]
        item.replies = texts
        if any(b in t for t in texts for b in BUSY):
            item.holding = True
        if not item.answered and any(not any(b in t for b in BUSY) for t in texts):
            item.answered = now


async def ready(session: Any, port: int) -> bool:
    try:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
            return bool(resp.status == 200)
    except Exception:
        return False


async def main_async(args: argparse.Namespace) -> int:
    import aiohttp
    from aiohttp import web

    from bot.nlu.service import latest_model
    from bot.nlu.settings import NluSettings
    from channels.wechat.fake_api import FakeWeChatAPI

    if latest_model(NluSettings.from_mapping({})) is None:
        print("no trained model: run `kefu nlu install && kefu nlu train` first", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="kefu-cold-"))
    port, rasa_port, fake_port = (free_port() for _ in range(3))
    procs, redis_port, mongo_port = start_stores(tmp)
    fake = FakeWeChatAPI()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    cfg = {
        "http": {"host": "127.0.0.1", "port": port},
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "mongo_url": f"mongodb://127.0.0.1:{mongo_port}/bench?retryWrites=false",
        "nlu": {"enabled": True, "urls": [f"http://127.0.0.1:{rasa_port}"], "autostart": True},
        "speech": {"enabled": False},
        "channels": {"wechat": [{**ACCOUNT, "api_base_url": f"http://127.0.0.1:{fake_port}"}]},
    }
    (tmp / "kefu.yml").write_text(yaml.safe_dump(cfg))
    argv = [sys.executable, "-m", "bot.cli", "run", "--config", str(tmp / "kefu.yml")]
    sent: list[Sent] = []
    tasks: list[asyncio.Task[None]] = []
    gateway = start(argv, tmp / "gateway-1.log")
    try:
        async with aiohttp.ClientSession() as session:
            print(f"first start (logs in {tmp}) ...", flush=True)
            while not await ready(session, port):
                if gateway.poll() is not None:
                    raise SystemExit((tmp / "gateway-1.log").read_text()[-3000:])
                await asyncio.sleep(0.5)
            t0 = time.monotonic()
            restart_at = t0 + args.before
            end_at = restart_at + args.after
            restarted_at = 0.0
            loaded_at = 0.0
            next_send = t0
            msg_id = 7_000_000_000_000_000_000
            while time.monotonic() < end_at or any(not s.answered for s in sent):
                now = time.monotonic()
                if now > end_at + 120:
                    break  # an unanswered message: reported below
                if now >= next_send and now < end_at:
                    item = Sent(f"oCold{len(sent)}", TEXTS[len(sent) % len(TEXTS)], now)
                    sent.append(item)
                    msg_id += 1
                    tasks.append(asyncio.create_task(send(session, port, item, msg_id)))
                    next_send += args.interval
                if not restarted_at and now >= restart_at:
                    await asyncio.to_thread(stop, gateway)
                    gateway = start(argv, tmp / "gateway-2.log")
                    restarted_at = time.monotonic()
                    print(f"restarted at +{restarted_at - t0:.1f}s", flush=True)
                if restarted_at and not loaded_at and await ready(session, port):
                    loaded_at = time.monotonic()
                watch(fake, sent)
                await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        stop(gateway)
        for proc in procs:
            stop(proc)
        await runner.cleanup()
    print(f"{'msg':>5} {'sent':>8} {'wait_s':>7} holding")
    waits = []
    for item in sent:
        wait = item.answered - item.first_try if item.answered else float("nan")
        waits.append(wait)
        print(f"{item.sender[5:]:>5} {item.first_try - restarted_at:>+8.1f} {wait:>7.2f} {'yes' if item.holding else 'no'}")
    load = loaded_at - restarted_at if loaded_at else float("nan")
    unanswered = sum(1 for s in sent if not s.answered)
    print(
        f"\nmessages {len(sent)}, unanswered {unanswered}, with a holding reply {sum(s.holding for s in sent)}; "
        f"restart to /readyz {load:.1f}s; longest wait {max(w for w in waits if w == w):.1f}s "
        f"(target <= {load + 5:.1f}s)"
    )
    return 0 if unanswered == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between messages")
    parser.add_argument("--before", type=float, default=10.0, help="seconds of traffic before the restart")
    parser.add_argument("--after", type=float, default=90.0, help="seconds of traffic after the restart")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
