"""Speech engines side by side on the same voice notes: speed, load time, memory.

    python bench/bench_speech.py [--model-path var/models/whisper-base] [--threads 2]
                                 [--engines faster-int8,faster-fp32,openai-fp32]

Each engine runs in its own child process so that its peak RSS is its own. The clips are
made offline with espeak-ng (English and Mandarin, AMR-NB as WeChat sends them) at
typical voice-note lengths. The real-time factor is audio seconds per processing second
(decoding included; model loading and one warm-up note excluded). Whisper pads every
note to a 30 s window, so short notes are slower than real time suggests: the table shows
each length. Target: faster-whisper int8 base at >= 5x real time on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLIPS = {
    # name: (espeak voice, text)
    "en-short": ("en-us", "My air conditioner is not cooling and it sounds like a tractor."),
    "en-medium": (
        "en-us",
        "Hello, I bought an air conditioner from your shop last month. Since yesterday it does "
        "not cool any more, and it makes a loud noise like a tractor. Can you send someone to "
        "repair it this week? My address is on the order.",
    ),
    "zh-medium": (
        "cmn-latn-pinyin",
        "ni3 hao3, wo3 shang4 ge4 yue4 mai3 le yi2 tai2 kong1 tiao2. zuo2 tian1 kai1 shi3 bu4 "
        "zhi4 leng3 le, sheng1 yin1 xiang4 tuo1 la1 ji1 yi2 yang4. qing3 wen4 zhe4 zhou1 "
        "neng2 pai4 ren2 lai2 xiu1 ma? xie4 xie4.",
    ),
    "en-long": (
        "en-us",
        "Hello, I bought an air conditioner from your shop last month. Since yesterday it does "
        "not cool any more, and it makes a loud noise like a tractor. I have already cleaned the "
        "filter and restarted it twice, but nothing changed. The display shows an error code "
        "that I do not understand. Can you send someone to repair it this week? I am at home "
        "every afternoon after two o'clock. My address and phone number are on the order. "
        "Thank you very much, and please call me before you come.",
    ),
}

ENGINES = {
    "faster-int8": {"engine": "faster", "compute_type": "int8"},
    "faster-fp32": {"engine": "faster", "compute_type": "float32"},
    "openai-fp32": {"engine": "openai", "compute_type": "float32"},
}


def make_clips(folder: Path) -> dict[str, Path]:
    import av

    out: dict[str, Path] = {}
    for name, (voice, text) in CLIPS.items():
        wav = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        amr = folder / f"{name}.amr"
        with av.open(str(wav)) as src, av.open(str(amr), "w", format="amr") as dst:
            stream = dst.add_stream("libopencore_amrnb", rate=8000)
            assert isinstance(stream, av.AudioStream)
            stream.layout = "mono"
            stream.bit_rate = 12200
            resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
            frames = [f for frame in src.decode(audio=0) for f in resampler.resample(frame)]
            for frame in [*frames, *resampler.resample(None), None]:
                for packet in stream.encode(frame):
                    dst.mux(packet)
        out[name] = amr
    return out


def run_worker(engine: str, model_path: str, threads: int, clips: dict[str, str]) -> dict[str, object]:
    """Inside the child: load one engine, transcribe every clip, report numbers as JSON."""
    from speech.decode import AudioLimits
    from speech.engines import load_engine
    from speech.pool import run_job
    from speech.settings import SpeechSettings

    settings = SpeechSettings(model_path=model_path, cpu_threads=threads, **ENGINES[engine])  # type: ignore[arg-type]
    limits = AudioLimits(max_bytes=settings.max_bytes, max_duration_s=settings.max_duration_s)
    started = time.perf_counter()
    model = load_engine(settings)
    load_s = time.perf_counter() - started
    audio = {name: Path(path).read_bytes() for name, path in clips.items()}
    run_job(model, audio[next(iter(audio))], "amr", limits)  # warm-up: first-call allocations
    results = {}
    for name, data in audio.items():
        t = run_job(model, data, "amr", limits)
        results[name] = {"duration_s": t.duration_s, "elapsed_s": t.elapsed_s, "text": t.text, "language": t.language}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"engine": engine, "load_s": load_s, "peak_rss_mb": peak_mb, "clips": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=str(REPO / "var" / "models" / "whisper-base"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--show-text", action="store_true", help="print each transcript")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--clips-json", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(run_worker(args.worker, args.model_path, args.threads, json.loads(args.clips_json))))
        return 0

    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed to make the clips (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    if not (Path(args.model_path) / "model.bin").is_file():
        print(f"no model at {args.model_path}: run `python -m speech.cli install`", file=sys.stderr)
        return 2
    engines = [e for e in args.engines.split(",") if e]
    with tempfile.TemporaryDirectory(prefix="kefu-bench-speech-") as tmp:
        clips = {name: str(path) for name, path in make_clips(Path(tmp)).items()}
        reports = []
        for engine in engines:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", engine, "--model-path", args.model_path,
                 "--threads", str(args.threads), "--clips-json", json.dumps(clips)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
            )
            if proc.returncode != 0:
                print(f"{engine}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            reports.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    names = list(CLIPS)
    print(f"\nspeech engines, {args.threads} threads, {os.cpu_count()} cores; x = audio seconds per second of processing\n")
    header = f"{'engine':<13}{'load s':>8}{'peak MB':>9}" + "".join(f"{n:>12}" for n in names) + f"{'overall':>10}"
    print(header)
    print("-" * len(header))
    durations = ""
    for report in reports:
        clips_r = report["clips"]
        total_audio = sum(c["duration_s"] for c in clips_r.values())
        total_time = sum(c["elapsed_s"] for c in clips_r.values())
        cells = "".join(f"{clips_r[n]['duration_s'] / clips_r[n]['elapsed_s']:>11.1f}x" for n in names)
        print(f"{report['engine']:<13}{report['load_s']:>8.2f}{report['peak_rss_mb']:>9.0f}{cells}{total_audio / total_time:>9.1f}x")
        durations = "  ".join(f"{n} {clips_r[n]['duration_s']:.1f} s" for n in names)
    print(f"\nclip lengths: {durations}")
    if args.show_text:
        for report in reports:
            for name, clip in report["clips"].items():
                print(f"{report['engine']:<13}{name:<11}[{clip['language']}] {clip['text']}")
    return 0 if len(reports) == len(engines) else 1


if __name__ == "__main__":
    sys.exit(main())
