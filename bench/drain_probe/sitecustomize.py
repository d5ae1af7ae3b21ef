"""Loaded at start-up by a gateway that bench_drain.py starts (this folder is first on
its PYTHONPATH): counts the MongoDB commands the process sends, by name, with PyMongo's
command listener, and writes the counts and the process's own CPU seconds to the file
named by ``KEFU_DRAIN_PROBE`` every 100 ms, so the benchmark can read them from outside.
With ``KEFU_DRAIN_PROFILE`` set it also runs cProfile on the main thread and writes the
stats to ``<that path>.<pid>.prof`` at exit (read them with ``python -m pstats``).
"""

from __future__ import annotations

import atexit
import cProfile
import json
import os
import resource
import threading
import time
from collections import Counter

from pymongo import monitoring

_counts: Counter[str] = Counter()
_lock = threading.Lock()


class _Counting(monitoring.CommandListener):
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with _lock:
            _counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _report(path: str) -> None:
    while True:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with _lock:
            snapshot = {"commands": dict(_counts), "cpu_s": usage.ru_utime + usage.ru_stime, "at": time.time()}
        tmp = f"{path}.tmp"
        with open(tmp, "w") as out:
            json.dump(snapshot, out)
        os.replace(tmp, path)
        time.sleep(0.1)


_target = os.environ.get("KEFU_DRAIN_PROBE")
if _target:
    monitoring.register(_Counting())
    threading.Thread(target=_report, args=(f"{_target}.{os.getpid()}.json",), daemon=True, name="drain-probe").start()

_profile_to = os.environ.get("KEFU_DRAIN_PROFILE")
if _profile_to:
    _profiler = cProfile.Profile(time.thread_time)  # CPU, not wall time: the machine is shared
    _profiler.enable()
    atexit.register(lambda: (_profiler.disable(), _profiler.dump_stats(f"{_profile_to}.{os.getpid()}.prof")))
