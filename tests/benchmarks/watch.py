"""Release watch benchmark: upload-to-pull-request time, and index requests per hour.

Run from the repository root (it is not a test and pytest never collects it)::

    python -m tests.benchmarks.watch [--packages N] [--passes N] [--changes N]

Everything is real but GitHub and PyPI: a PostgreSQL cluster (Debian's server, started
here), the Procrastinate queue and its periodic task, a local index answering PEP 691 JSON
with ETags, pip-compile, and git against the project's fake GitHub.

* **Upload to pull request**: a repository watching ``beta`` is recorded by an onboarding
  job; a worker runs both queues with the pass at the default
  ``LOCKWARDEN_WATCH_INTERVAL_MIN`` (every minute). A new ``beta`` is uploaded, and the time
  until the refresh pull request is open is taken: the wait for the next pass, the pass, the
  targeted refresh and its publication.
* **Requests**: ``--packages`` projects on the index, all locked and watched by one
  repository. A first pass fetches every page; each following pass comes after ``--changes``
  uploads. The requests and 304 answers of each pass are counted, and scaled to an hour at
  the default interval (1 minute: 60 passes an hour).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bot.config import parse_config
from bot.github.client import GitHubApp
from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner
from bot.sandbox.egress import EgressPolicy
from bot.settings import Settings, app_credentials
from bot.watch.store import WatchBook
from bot.watch.tick import PassResult, ReleaseWatch
from tests.support.fake_github import FakeGitHub
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex, start_index
from tests.support.postgres import start_cluster
from tests.watch.conftest import REPO, checkout, config_text, watched_repo

LOCAL = EgressPolicy(("127.0.0.1",))
DEFAULT_INTERVAL_MIN = int(Settings.model_fields["watch_interval_min"].default)
DEFAULT_PASSES_PER_HOUR = 60 // DEFAULT_INTERVAL_MIN


def upload_to_pull(url: str, index: PackageIndex, tmp: Path) -> tuple[float, float]:
    """Seconds from an upload to the open refresh pull request, the pass at the default
    interval, and of those the seconds from the start of the pass that saw it."""
    with ProcrastinateQueue(url) as setup:
        setup.migrate()
    index.publish("beta", "1.0.0")
    with FakeGitHub(tmp / "github") as fake:
        installation_id = watched_repo(fake, index, "1.0.0")
        # The index is on 127.0.0.1: allowed as an operator allows a private index.
        settings = Bot(fake, tmp / "cache", allowed_private_hosts=("127.0.0.1",)).settings
        watch = ReleaseWatch(cache_dir=tmp / "watch", policy=LOCAL)
        passes: list[float] = []

        def timed_pass(queue: ProcrastinateQueue) -> None:
            passes.append(time.perf_counter())
            watch.run(queue)

        cron = f"*/{DEFAULT_INTERVAL_MIN} * * * *"
        with ProcrastinateQueue(url, watch=timed_pass, watch_cron=cron) as queue:
            runner = JobRunner(
                GitHubApp(app_credentials(settings)),
                settings,
                git_base_url=fake.git_url,
                schedules=queue,
                watch=WatchBook(queue),
            )
            queue.enqueue(JobRequest("onboard", REPO, installation_id, "install"))
            queue.run_worker(runner.run, install_signal_handlers=False, wait=False)
            watch.run(queue)  # what exists before the upload
            stop = threading.Event()
            worker = threading.Thread(
                target=queue.run_worker,
                args=(runner.run,),
                kwargs={"install_signal_handlers": False, "stop": stop, "concurrency": 2},
            )
            worker.start()
            try:
                index.publish("beta", "1.1.0")
                started = time.perf_counter()
                while not [p for p in fake.pulls(REPO, state="open") if p.head.endswith("refresh")]:
                    if time.perf_counter() - started > 300:
                        raise RuntimeError("no pull request within 5 minutes")
                    time.sleep(0.5)
                done = time.perf_counter()
            finally:
                stop.set()
                worker.join(60)
        watch.close()
    seen_by = max(t for t in passes if t <= done)
    return done - started, done - seen_by


def request_volume(
    url: str, index: PackageIndex, tmp: Path, packages: int, passes: int, changes: int
) -> list[tuple[PassResult, float]]:
    """Each pass's counters and duration, over ``packages`` watched projects."""
    names = [f"pkg{n:04d}" for n in range(packages)]
    for name in names:
        index.publish(name, "1.0.0")
    pins = dict.fromkeys(names, "1.0.0")
    watched = "[" + ", ".join(names) + "]"
    root = checkout(tmp / "repo", index, pins, watched)
    config = parse_config(config_text(watched), ".github/lockwarden.yml")
    out = []
    with ProcrastinateQueue(url) as queue:
        queue.migrate()
        WatchBook(queue).record(root, REPO, 7, config)
        watch = ReleaseWatch(cache_dir=tmp / "volume-cache", policy=LOCAL)
        for number in range(passes + 1):
            if number:
                for name in names[number * changes : (number + 1) * changes]:
                    index.publish(name, "1.1.0")
            started = time.perf_counter()
            result = watch.run(queue)
            out.append((result, time.perf_counter() - started))
        watch.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, default=1000, help="0: the latency only")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--changes", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cluster = start_cluster()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch)
            with start_index(tmp / "index", serve_json=True, etags=True) as index:
                latency, after_pass = upload_to_pull(cluster.create_database("latency"), index, tmp)
            if not args.packages:
                print(
                    f"upload to pull request: {latency:.1f} s ({after_pass:.1f} s after the pass)"
                )
                return
            with start_index(tmp / "index-many", serve_json=True, etags=True) as index:
                volume = request_volume(
                    cluster.create_database("volume"),
                    index,
                    tmp,
                    args.packages,
                    args.passes,
                    args.changes,
                )
    finally:
        cluster.destroy()
    print(
        f"upload to open pull request (pass every {DEFAULT_INTERVAL_MIN} min, the default): "
        f"{latency:.1f} s, of which "
        f"{after_pass:.1f} s from the start of the pass (pass, refresh, pull request)"
    )
    first, first_s = volume[0]
    print(
        f"first pass: {first.asked} packages, {first.requests} requests, "
        f"{first.not_modified} not modified, {first_s:.1f} s"
    )
    later = volume[1:]
    requests = statistics.mean(r.requests for r, _ in later)
    not_modified = statistics.mean(r.not_modified for r, _ in later)
    duration = statistics.median(s for _, s in later)
    queued = sum(len(r.enqueued) for r, _ in later)
    print(
        f"later passes ({len(later)}, {args.changes} uploads before each): {requests:.0f} "
        f"requests, {not_modified:.0f} answered 304, {duration:.1f} s median; "
        f"refreshes queued: {queued}"
    )
    print(
        f"per hour at the default interval ({DEFAULT_PASSES_PER_HOUR} passes): "
        f"{requests * DEFAULT_PASSES_PER_HOUR:.0f} requests, "
        f"{(requests - not_modified) * DEFAULT_PASSES_PER_HOUR:.0f} full pages"
    )


if __name__ == "__main__":
    main()
