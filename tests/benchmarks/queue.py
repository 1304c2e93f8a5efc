"""Queue benchmark: webhook-to-job-start latency, and no-op refresh jobs per minute with one
and with two worker processes.

Run from the repository root (it is not a test and pytest never collects it)::

    python -m tests.benchmarks.queue [--repos N] [--deliveries N] [--out FILE.json]

Everything is real but GitHub: a PostgreSQL cluster (Debian's server, started here), the
Procrastinate queue, ``lockwarden worker`` processes, the receiver app, pip-compile against a
local index, git clones and pushes against the project's fake GitHub.

* **Latency**: one idle worker; ``push`` deliveries are posted to the receiver one at a time
  (each for another repository, so none is merged into a waiting refresh), and the time from
  the POST to the job's ``started`` event is measured (Procrastinate wakes workers with
  LISTEN/NOTIFY).
* **Throughput**: ``--repos`` repositories whose locks are already current; a refresh of each
  is enqueued at once and the wall time until all succeeded is taken, with one worker and
  then with two (each on a fresh database). A no-op refresh still clones, compiles every
  environment and checks the pull request, so it is the floor of a job's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.pipeline.checkout import open_local
from bot.server.app import create_app
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh
from tests.support.fake_github import FakeGitHub
from tests.support.index_server import start_index
from tests.support.postgres import start_cluster

SUCCEEDED = (
    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'lockwarden' "
    "AND status = 'succeeded'"
)
RUNNING = (
    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'lockwarden' AND status = 'doing'"
)
STARTED = (
    "SELECT extract(epoch FROM e.at) FROM procrastinate_events e "
    "JOIN procrastinate_jobs j ON j.id = e.job_id "
    "WHERE e.type = 'started' AND j.args->>'repo' = %s"
)


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not finish in time")
        time.sleep(0.02)


def start_workers(env: dict[str, str], count: int, url: str, logs: Path) -> list[Any]:
    procs = []
    for i in range(count):
        out = (logs / f"worker-{count}-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", "from bot.cli import main; main()", "worker"],
                env={**env, "LOCKWARDEN_DATABASE_URL": url},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    wait_for(lambda: rows(url, "SELECT count(*) FROM procrastinate_workers")[0][0] >= count, 60)
    return procs


def stop_workers(procs: list[Any]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=12, help="repositories refreshed per run")
    parser.add_argument("--deliveries", type=int, default=20, help="latency samples")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lockwarden-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cluster = start_cluster()
        index = start_index(tmp / "index")
        try:
            figures = run(args, tmp, cluster, index)
        finally:
            index.close()
            cluster.destroy()
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


def run(args: argparse.Namespace, tmp: Path, cluster: Any, index: Any) -> dict[str, Any]:
    index.publish("beta", "1.0.0")
    index.publish("gamma", "1.0.0", ["beta"])
    spec = f"--index-url {index.url}\nbeta\ngamma\n"
    # A current lock, compiled once the way Lockwarden compiles it.
    local = tmp / "template"
    (local / "requirements").mkdir(parents=True)
    (local / "requirements" / "serve.in").write_text(spec)
    settings = Settings(cache_dir=tmp / "cache", builder="none")
    refresh(open_local(local), RefreshOptions(build=False), settings)
    lock = (local / "requirements" / "serve.txt").read_text()

    total = max(args.repos, args.deliveries)
    with FakeGitHub(tmp / "github") as fake:
        installation = fake.create_installation("acme")
        names = [f"acme/repo-{i:03d}" for i in range(total)]
        for name in names:
            fake.create_repo(
                name,
                files={"requirements/serve.in": spec, "requirements/serve.txt": lock},
                installation=installation,
            )
        env = {
            **os.environ,
            "LOCKWARDEN_APP_ID": str(fake.app_id),
            "LOCKWARDEN_PRIVATE_KEY": fake.private_key_pem,
            "LOCKWARDEN_GITHUB_API_URL": fake.api_url,
            "LOCKWARDEN_CACHE_DIR": str(tmp / "cache"),
            "LOCKWARDEN_BUILDER": "none",
            "LOCKWARDEN_LOG_LEVEL": "WARNING",
        }
        figures: dict[str, Any] = {"repos": args.repos, "cpus": os.cpu_count()}
        figures["latency_ms"] = latency(fake, names[: args.deliveries], cluster, env, tmp)
        per_minute = {}
        for workers in (1, 2):
            url = cluster.create_database(f"bench_throughput_{workers}")
            with ProcrastinateQueue(url) as queue:
                queue.migrate()
                procs = start_workers(env, workers, url, tmp)
                started = time.perf_counter()
                for name in names[: args.repos]:
                    queue.enqueue(
                        JobRequest("refresh", name, installation.id, f"bench-{workers}-{name}")
                    )
                wait_for(lambda url=url: rows(url, SUCCEEDED)[0][0] == args.repos, 1800)
                elapsed = time.perf_counter() - started
                stop_workers(procs)
                durations = [
                    r[0]
                    for r in rows(
                        url,
                        "SELECT extract(epoch FROM max(e.at) - min(e.at)) "
                        "FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                        "WHERE j.queue_name = 'lockwarden' AND e.type IN ('started', 'succeeded') "
                        "GROUP BY j.id",
                    )
                ]
            per_minute[workers] = args.repos / elapsed * 60
            figures[f"workers_{workers}"] = {
                "wall_s": round(elapsed, 2),
                "jobs_per_minute": round(per_minute[workers], 1),
                "job_s_median": round(statistics.median(float(d) for d in durations), 2),
            }
        figures["ratio_2_over_1"] = round(per_minute[2] / per_minute[1], 2)
    return figures


def latency(
    fake: FakeGitHub, names: list[str], cluster: Any, env: dict[str, str], tmp: Path
) -> dict[str, float]:
    url = cluster.create_database("bench_latency")
    samples = []
    with ProcrastinateQueue(url) as queue:
        queue.migrate()
        procs = start_workers(env, 1, url, tmp)
        settings = Settings(webhook_secret=SecretStr(fake.webhook_secret), app_slug=fake.app_slug)
        client = TestClient(create_app(settings, queue))
        for name in names:
            body = fake.encode(fake.payload("push", repo=name))
            headers = fake.webhook_headers("push", body)
            (sent,) = rows(url, "SELECT extract(epoch FROM clock_timestamp())")[0]
            assert client.post("/webhook", content=body, headers=headers).status_code == 202
            wait_for(lambda n=name: bool(rows(url, STARTED, n)), 120)
            started = rows(url, STARTED, name)[0][0]
            samples.append((float(started) - float(sent)) * 1000)
            wait_for(lambda: rows(url, RUNNING)[0][0] == 0, 300)
        stop_workers(procs)
    samples.sort()
    return {
        "samples": len(samples),
        "p50": round(statistics.median(samples), 1),
        "p90": round(samples[int(len(samples) * 0.9) - 1], 1),
        "max": round(samples[-1], 1),
    }


if __name__ == "__main__":
    main()
