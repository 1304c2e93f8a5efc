"""Advisory audit benchmark: ``examples/ml-service``'s three locks against the local service.

Run from the repository root (it is not a test and pytest never collects it)::

    python -m tests.benchmarks.audit [--runs N]

Each run audits the example's environments (serve, train, dev) with ``audit_locks`` and
PyPI's API served by ``tests/support/advisory_service.py`` on 127.0.0.1: first with an empty
cache (one full answer per distinct pinned release), then again with that cache (one
conditional request per release, each answered ``304 Not Modified``). It prints the medians,
the requests each pass made and the cold/warm ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bot.advisories import ServiceConfig, audit_locks
from bot.pipeline.checkout import open_local
from bot.pipeline.configure import configure
from tests.support.advisory_service import start_advisory_service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml-service"


def _timed(config: ServiceConfig) -> float:
    workspace = open_local(EXAMPLE)
    loaded = configure(workspace)
    started = time.perf_counter()
    audit = audit_locks(workspace.root, loaded.config, config)
    elapsed = time.perf_counter() - started
    assert audit.checked, audit.notes
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold: list[float] = []
    warm: list[float] = []
    with start_advisory_service() as service:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as cache:
                config = ServiceConfig("pypi", service.url, Path(cache), 15.0, 4)
                before = service.count()
                cold.append(_timed(config))
                cold_requests = service.count() - before
                warm.append(_timed(config))
                warm_requests = service.count() - before - cold_requests
        not_modified = service.count(status=304)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"environments: serve, train, dev ({EXAMPLE.name}); runs: {args.runs}")
    print(f"cold cache: {c * 1000:.0f} ms median, {cold_requests} requests per audit")
    print(
        f"warm cache: {w * 1000:.0f} ms median, {warm_requests} conditional requests per audit "
        f"({not_modified} answered 304 in all)"
    )
    print(f"cold / warm: {c / w:.2f}")


if __name__ == "__main__":
    main()
