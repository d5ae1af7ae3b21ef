"""bench/run_all.py writes the README's performance section in place, and says why a
benchmark did not run."""

from __future__ import annotations

from pathlib import Path

from bench.run_all import BEGIN, END, Bench, Outcome, run, section, write_readme


def test_section_replaced_in_place_and_skips_say_why(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Kefu\n\nintro\n\n## Licence\n\nApache-2.0\n")
    skipped = run(Bench("bench_x", needs=lambda: "wrk not on PATH"), quick=True, timeout_s=1)
    assert skipped.status == "skipped" and skipped.output == "wrk not on PATH"
    ran = Outcome(Bench("bench_y"), "python bench/bench_y.py", "ran", 12.0, "measure  result\nthroughput  9,000 /s\n")
    write_readme(section([skipped, ran], quick=True), readme)
    first = readme.read_text()
    assert first.index(BEGIN) < first.index("## Licence")
    assert "| bench_x | `python bench/bench_x.py` | skipped: wrk not on PATH | 0 s |" in first
    assert "throughput  9,000 /s" in first
    write_readme(section([ran], quick=False, only="y"), readme)
    second = readme.read_text()
    assert second.count(BEGIN) == 1 and second.count(END) == 1
    assert "bench_x" not in second and "`python bench/run_all.py --only y`" in second
    assert second.startswith("# Kefu\n\nintro\n") and second.rstrip().endswith("Apache-2.0")
