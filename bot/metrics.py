"""Prometheus metrics of the pipeline, the jobs and the queue.

Stage durations and job counts are recorded where the work is done, into :data:`REGISTRY`,
one per process (like the standard library's loggers): the pipeline runs deep below any
object that could carry a registry, and one process runs many jobs. It is served by the
receiver's ``GET /metrics`` (next to the receiver's own metrics) and by
``lockwarden worker --metrics-port``; both add :class:`QueueCollector`, which reads the
queue's state from PostgreSQL when scraped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.errors import LockwardenError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The process's pipeline and job metrics."""

STAGES = ("checkout", "configure", "compile", "signals", "pins", "build", "test", "publish")
STAGE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
QUEUE_STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
QUEUE_TIMEOUT_S = 2.0
"""A scrape waits at most this long for the database (Prometheus gives up after 10 s)."""
UNEXPECTED = "unexpected"
"""The failure reason of an error that is not a :class:`~bot.errors.LockwardenError`."""

STAGE_DURATION = Histogram(
    "lockwarden_stage_duration_seconds",
    "Time spent in each stage of the pipeline (also when it failed).",
    ["stage"],
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
JOBS = Counter(
    "lockwarden_jobs",
    "Jobs run, by kind and outcome: the job's action (opened, updated, skipped, ...), or "
    "error when it raised (it is then retried).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_FAILURES = Counter(
    "lockwarden_job_failures",
    "Job runs that raised, by kind and reason (the error's code, or unexpected).",
    ["kind", "reason"],
    registry=REGISTRY,
)
for _stage in STAGES:
    STAGE_DURATION.labels(stage=_stage)  # exported from the start, with zero counts


def failure_reason(exc: BaseException) -> str:
    """The error's stable code, or ``unexpected``: a bounded label set."""
    return exc.code if isinstance(exc, LockwardenError) else UNEXPECTED


@runtime_checkable
class JobCounts(Protocol):
    """A queue that can count its jobs by state (the PostgreSQL one)."""

    def job_counts(self, *, timeout_s: float = ...) -> Mapping[str, int]: ...


class QueueCollector(Collector):
    """``lockwarden_queue_jobs{state}`` and ``lockwarden_queue_depth``, read when scraped.

    A database that does not answer within ``timeout_s`` leaves both out of that scrape
    (with a warning in the log) instead of failing the whole ``/metrics`` answer.
    """

    def __init__(self, queue: JobCounts, *, timeout_s: float = QUEUE_TIMEOUT_S) -> None:
        self._queue = queue
        self._timeout_s = timeout_s

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not wait for the database.
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self._queue.job_counts(timeout_s=self._timeout_s)
        except Exception as exc:
            log.warning("queue metrics left out of this scrape: %s", exc)
            return []
        return self._families(counts, with_samples=True)

    @staticmethod
    def _families(counts: Mapping[str, int], *, with_samples: bool = False) -> list[Metric]:
        jobs = GaugeMetricFamily(
            "lockwarden_queue_jobs",
            "Jobs in the queue's table, by state.",
            labels=["state"],
        )
        depth = GaugeMetricFamily("lockwarden_queue_depth", "Jobs waiting to be run (state todo).")
        if with_samples:
            for state in sorted({*QUEUE_STATES, *counts}):
                jobs.add_metric([state], counts.get(state, 0))
            depth.add_metric([], counts.get("todo", 0))
        return [jobs, depth]


class _Forward(Collector):
    """The metrics of another registry, served through this one."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()

    def describe(self) -> Iterable[Metric]:
        return self._source.collect()  # in-process values: cheap


def expose(registry: CollectorRegistry, queue: object | None = None) -> CollectorRegistry:
    """Add the process's metrics to ``registry``, and the queue's when it counts its jobs."""
    registry.register(_Forward(REGISTRY))
    if isinstance(queue, JobCounts):
        registry.register(QueueCollector(queue))
    return registry


@dataclass(frozen=True)
class MetricsServer:
    """``GET /metrics`` served from a thread of its own (``lockwarden worker``)."""

    port: int
    server: WSGIServer
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(port: int, queue: object | None = None) -> MetricsServer | None:
    """Serve the process's metrics (and the queue's) on ``port``, all addresses; ``None``
    for port 0 (off). Raises ``OSError`` when the port cannot be bound."""
    if port == 0:
        return None
    registry = expose(CollectorRegistry(auto_describe=True), queue)
    server, thread = start_http_server(port, registry=registry)
    return MetricsServer(int(server.server_port), server, thread)
