"""Run every benchmark and write the README's performance section.

    python bench/run_all.py [--quick] [--only ack,notify] [--no-readme]

Each benchmark runs as its own child process (``python bench/<name>.py ...``), one after
the other so that they do not compete for the cores. Its output is kept in
``var/bench/<name>.txt`` and copied into the README between the ``bench:begin`` and
``bench:end`` markers, under a table of what ran: the machine, the date, each
benchmark's command, how long it took and whether it ran, was skipped (a prerequisite
is missing: wrk, a trained Rasa model, Whisper weights) or failed. Nothing is invented:
a benchmark that did not run says why, and the figures are the benchmarks' own output.

``--quick`` uses smaller sizes (minutes rather than the better part of an hour); the
table says which sizes were used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _missing(*tools: str) -> str:
    absent = [t for t in tools if shutil.which(t) is None]
    return f"{', '.join(absent)} not on PATH" if absent else ""


def _rasa_model() -> str:
    models = Path(os.environ.get("KEFU_RASA_MODELS") or ROOT / "var" / "rasa" / "models")
    return "" if any(models.glob("*.tar.gz")) else f"no trained Rasa model in {models} (kefu nlu train)"


def _whisper() -> str:
    models = Path(os.environ.get("KEFU_SPEECH_MODELS") or ROOT / "var" / "models") / "whisper-base"
    return "" if (models / "model.bin").is_file() else f"no Whisper weights in {models} (kefu speech install)"


def _all(*checks: Callable[[], str]) -> Callable[[], str]:
    return lambda: "; ".join(r for r in (c() for c in checks) if r)


@dataclass(frozen=True)
class Bench:
    name: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    needs: Callable[[], str] = lambda: ""
    extra_env: dict[str, str] = field(default_factory=dict)


BENCHES = (
    Bench("bench_ack", (), ("--duration", "5", "--requests", "30000", "--e2e", "100"), lambda: _missing("wrk", "taskset", "redis-server")),
    Bench("bench_wecom", (), ("--duration", "5", "--requests", "30000"), lambda: _missing("wrk", "taskset", "redis-server")),
    Bench("bench_dingtalk", (), ("--duration", "5", "--requests", "30000"), lambda: _missing("wrk", "taskset", "redis-server")),
    Bench("bench_email", (), ("--mails", "1000"), lambda: _missing("dovecot", "redis-server")),
    Bench("bench_notify", (), ("--customers", "10000", "--notify", "500", "--campaign", "10000"), lambda: _missing("redis-server")),
    Bench("bench_skills", (), ("--repairs", "10", "--contracts", "10000", "--reviews", "300"), _all(lambda: _missing("redis-server"), _rasa_model)),
    Bench("bench_nlu", (), ("--requests", "200"), _rasa_model),
    Bench("bench_conversation", (), ("--messages", "40"), _rasa_model),
    Bench("bench_drain", (), ("--messages", "2000"), ("--messages", "500"), lambda: _missing("redis-server")),
    Bench("bench_speech", (), ("--engines", "faster-int8"), _whisper),
    Bench("bench_voice", (), ("--notes", "3", "--texts", "60", "--rounds", "1"), _all(lambda: _missing("espeak-ng"), _whisper)),
)


@dataclass
class Outcome:
    bench: Bench
    command: str
    status: str  # ran, skipped, failed, timed out
    seconds: float
    output: str


def run(bench: Bench, quick: bool, timeout_s: float) -> Outcome:
    args = bench.quick if quick else bench.full
    command = " ".join(["python", f"bench/{bench.name}.py", *args])
    reason = bench.needs()
    if reason:
        return Outcome(bench, command, "skipped", 0.0, reason)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **bench.extra_env}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{bench.name}.py"), *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Outcome(bench, command, "timed out", time.monotonic() - started, out)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return Outcome(bench, command, f"failed (exit {proc.returncode})", seconds, proc.stdout + "\n" + tail)
    return Outcome(bench, command, "ran", seconds, proc.stdout)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "?"
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def section(outcomes: list[Outcome], quick: bool, only: str | None = None) -> str:
    flags = (" --quick" if quick else "") + (f" --only {only}" if only else "")
    lines = [
        BEGIN,
        f"Written by `python bench/run_all.py{flags}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine()}."
        " Shared or noisy machines move these numbers; rerun before relying on one.",
        "",
        "| benchmark | command | status | wall time |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        status = o.status if o.status != "skipped" else f"skipped: {o.output}"
        lines.append(f"| {o.bench.name} | `{o.command}` | {status} | {o.seconds:.0f} s |")
    for o in outcomes:
        if o.status == "skipped":
            continue
        lines += ["", f"<details><summary>{o.bench.name}: {o.status}</summary>", "", "```", o.output.strip(), "```", "", "</details>"]
    lines.append(END)
    return "\n".join(lines)


def write_readme(text: str, readme: Path = ROOT / "README.md") -> None:
    current = readme.read_text()
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        readme.write_text(head + text + tail)
        return
    marker = "## Licence"
    body = "### Performance\n\n" + text + "\n\n"
    readme.write_text(current.replace(marker, body + marker, 1) if marker in current else current + "\n" + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: minutes instead of most of an hour")
    parser.add_argument("--only", help="comma-separated benchmark names (bench_ prefix optional)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per benchmark")
    parser.add_argument("--no-readme", dest="readme", action="store_false", help="print, do not touch README.md")
    args = parser.parse_args(argv)
    chosen: tuple[Bench, ...] = BENCHES
    if args.only:
        names = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only.split(",")}
        unknown = names - {b.name for b in BENCHES}
        if unknown:
            parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        chosen = tuple(b for b in BENCHES if b.name in names)
    OUT.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for bench in chosen:
        print(f"== {bench.name}", file=sys.stderr, flush=True)
        outcome = run(bench, args.quick, args.timeout)
        (OUT / f"{bench.name}.txt").write_text(f"$ {outcome.command}\n{outcome.status}, {outcome.seconds:.0f} s\n\n{outcome.output}")
        print(f"   {outcome.status} ({outcome.seconds:.0f} s)", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    text = section(outcomes, args.quick, args.only)
    if args.readme:
        write_readme(text)
        print("README.md: performance section written", file=sys.stderr)
    else:
        print(text)
    return 0 if all(o.status in ("ran", "skipped") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
