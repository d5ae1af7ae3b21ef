"""Prometheus metrics, one :class:`Metrics` per gateway handed to whoever measures.

Each instance owns its registry, so several gateways in one process (tests) do not
collide. With ``PROMETHEUS_MULTIPROC_DIR`` set (several web or worker processes behind
one scrape target), prometheus-client writes every value to a file in that directory
and ``/metrics`` merges the files of all processes; the directory must be emptied when
the processes start (see the README's scale-out guide).

Docs: https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Webhook acks are milliseconds; turns with NLU and speech take up to seconds.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhook_requests = Counter(
            "kefu_webhook_requests", "Webhook requests by channel and outcome", ["channel", "outcome"], registry=r
        )
        self.webhook_ack_seconds = Histogram(
            "kefu_webhook_ack_seconds", "Time to answer a webhook", ["channel", "outcome"], buckets=_FAST, registry=r
        )
        self.queue_depth = Gauge(
            "kefu_queue_depth", "Entries on a stream not yet done", ["stream"], multiprocess_mode="livemostrecent", registry=r
        )
        self.queue_oldest_age_seconds = Gauge(
            "kefu_queue_oldest_age_seconds",
            "Age of the oldest entry on a stream not yet done",
            ["stream"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.turn_seconds = Histogram(
            "kefu_worker_turn_seconds", "Time a worker takes for one inbound message", ["channel"], buckets=_SLOW, registry=r
        )
        self.nlu_seconds = Histogram("kefu_nlu_seconds", "NLU parse latency", ["outcome"], buckets=_FAST, registry=r)
        self.speech_seconds = Histogram("kefu_speech_seconds", "Voice note to text", ["outcome"], buckets=_SLOW, registry=r)
        self.outbox_sends = Counter("kefu_outbox_sends", "Outbox deliveries by channel and outcome", ["channel", "outcome"], registry=r)
        self.dead_letters = Counter("kefu_dead_letters", "Dead-lettered items by kind", ["kind"], registry=r)
        self.job_seconds = Histogram(
            "kefu_job_seconds", "Duration of periodic jobs (digests, scans)", ["job"], buckets=_SLOW, registry=r
        )

    @contextmanager
    def timed(self, histogram: Histogram, *labels: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            histogram.labels(*labels).observe(time.perf_counter() - start)

    def exposition(self) -> bytes:
        """The text format for a scrape: every process's values in multiprocess mode."""
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if path:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
