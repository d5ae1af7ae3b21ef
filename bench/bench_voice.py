"""Voice notes end to end, and what transcription does to text latency.

Run: ``python bench/bench_voice.py`` after ``kefu speech install`` (and, for replies that
go through NLU, ``kefu nlu install && kefu nlu train``). It starts Redis, a
MongoDB-protocol server, Rasa (when a model is trained), the gateway (``--role all``,
faster-whisper int8) and a fake WeChat API; makes a ~10 s English voice note with
espeak-ng, encoded to AMR-NB as WeChat sends it; then measures

* voice note in -> reply out, one at a time (p50, p90);
* text in -> reply out at concurrency 4, alone and while voice notes keep arriving;
* those voice notes' own latency while text flows (text first: they wait for it).

``--no-text-first`` measures the same without pausing transcription for text turns.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import ACCOUNT, pct  # noqa: E402
from bench.gateway_stack import gateway_stack  # noqa: E402
from channels.wechat.simulator import signed_request, text_xml, voice_xml  # noqa: E402
from tests.speech.conftest import encode, read_pcm16, speak  # noqa: E402

SENTENCE = (
    "Hello, my air conditioner, model X K eight eight zero zero, stopped cooling yesterday evening. "
    "It makes a loud noise like a tractor. Please send an engineer to fix it."
)
_ids = itertools.count(5_000_000_000)


def make_note(folder: Path) -> bytes:
    speak("en-us", SENTENCE, folder / "note.wav")
    encode(read_pcm16(folder / "note.wav", 8000), 8000, folder / "note.amr", "amr", "libopencore_amrnb", 12200)
    return (folder / "note.amr").read_bytes()


async def timed(session: Any, port: int, fake: Any, user: str, xml: str) -> float:
    query, body = signed_request(ACCOUNT, xml)
    before = len(fake.sent_to(user))
    t0 = time.perf_counter()
    async with session.post(f"http://127.0.0.1:{port}/wechat/bench", params=query, data=body) as resp:
        assert resp.status == 200, await resp.text()
    while len(fake.sent_to(user)) <= before:
        await asyncio.sleep(0.002)
    return (time.perf_counter() - t0) * 1000


async def text_run(session: Any, port: int, fake: Any, count: int, tag: str) -> list[float]:
    sem = asyncio.Semaphore(4)

    async def one(i: int) -> float:
        async with sem:
            return await timed(session, port, fake, f"oText{tag}{i}", text_xml(f"oText{tag}{i}", "hello there", next(_ids)))

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, list[float]]:
    import aiohttp

    models = Path(os.environ.get("KEFU_SPEECH_MODELS") or ROOT / "var" / "models") / "whisper-base"
    audio = make_note(tmp)
    config = {
        "speech": {"enabled": True, "model_path": str(models), "cpu_threads": args.threads, "low_confidence": 0.0, "vocabulary": ["XK-8800"],
                   "text_first": args.text_first, "max_pause_s": args.max_pause_s, "min_run_s": args.min_run_s},
        "pipeline": {"workers": 2},
    }
    async with gateway_stack(tmp, config=config, require_nlu=False) as stack:
        port, fake = stack.port, stack.fake
        media_id = fake.add_media(audio)
        results: dict[str, list[float]] = {}
        async with aiohttp.ClientSession() as session:
            await timed(session, port, fake, "oWarm", voice_xml("oWarm", media_id, next(_ids)))  # model load
            await text_run(session, port, fake, 20, "warm")
            results["voice note -> reply"] = [
                await timed(session, port, fake, f"oVoice{i}", voice_xml(f"oVoice{i}", media_id, next(_ids))) for i in range(args.notes)
            ]
            # Quiet and loaded runs alternate, so drift in what else the machine does
            # weighs on both sides of the comparison alike.
            results["text, no voice load"] = []
            results["text, 2 voice notes in flight"] = []
            results["voice note -> reply, during text"] = []
            loads = itertools.count()
            for r in range(args.rounds):
                results["text, no voice load"] += await text_run(session, port, fake, args.texts, f"quiet{r}-")
                stop_voice = asyncio.Event()

                async def voice_load() -> None:
                    while not stop_voice.is_set():
                        i = next(loads)
                        took = await timed(session, port, fake, f"oLoad{i}", voice_xml(f"oLoad{i}", media_id, next(_ids)))
                        results["voice note -> reply, during text"].append(took)

                loaders = [asyncio.create_task(voice_load()) for _ in range(2)]
                await asyncio.sleep(1.0)
                results["text, 2 voice notes in flight"] += await text_run(session, port, fake, args.texts, f"busy{r}-")
                stop_voice.set()
                await asyncio.gather(*loaders)
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=10)
    parser.add_argument("--texts", type=int, default=200, help="text messages per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating quiet / voice-loaded runs")
    parser.add_argument("--threads", type=int, default=0,
                        help="speech.cpu_threads (0, the product default: all cores; text_first makes room for text)")
    parser.add_argument("--no-text-first", dest="text_first", action="store_false",
                        help="speech.text_first: false (transcription keeps running during text turns)")
    parser.add_argument("--max-pause-s", type=float, default=5.0, help="speech.max_pause_s")
    parser.add_argument("--min-run-s", type=float, default=0.5, help="speech.min_run_s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-voice-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    print(f"Voice notes and text through the gateway (faster-whisper int8, cpu_threads={args.threads}, "
          f"text_first={str(args.text_first).lower()}, {os.cpu_count()} cores)")
    print(f"{'measure':32} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, lat in results.items():
        print(f"{name:32} {len(lat):>5} {pct(lat, 50):>8.0f} {pct(lat, 90):>8.0f} {pct(lat, 99):>8.0f} {statistics.mean(lat):>8.0f}")
    quiet = pct(results["text, no voice load"], 99)
    busy = pct(results["text, 2 voice notes in flight"], 99)
    print(f"text p99 under voice load: {busy / quiet:.2f}x its value without")
    return 0


if __name__ == "__main__":
    sys.exit(main())
