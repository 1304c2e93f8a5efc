"""Workers as separate processes on a real PostgreSQL, against the fake GitHub: a worker
killed mid-job has its job finished by another (one pull request), SIGTERM lets the current
job finish, a burst of pushes is one refresh, two repositories are refreshed in parallel and
one repository's jobs never overlap."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.server.app import create_app
from bot.settings import Settings
from tests.support.fake_github import FakeGitHub
from tests.support.index_server import PackageIndex
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.slow

_databases = itertools.count(1)
REPOS = ("acme/one", "acme/two")


class Cluster:
    """The fake GitHub with two repositories, a database, and worker processes."""

    def __init__(self, fake: FakeGitHub, index: PackageIndex, url: str, tmp: Path) -> None:
        self.fake = fake
        self.url = url
        self.installation = fake.create_installation("acme")
        for repo in REPOS:
            fake.create_repo(
                repo,
                files={
                    # configured: discovery proposes no spec that has no lock yet
                    ".github/lockwarden.yml": "environments:\n"
                    "  - name: serve\n    spec: requirements/serve.in\n",
                    "requirements/serve.in": f"--index-url {index.url}\nbeta\n",
                },
                installation=self.installation,
            )
        self.queue = ProcrastinateQueue(url)
        self.queue.migrate()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "LOCKWARDEN_APP_ID": str(fake.app_id),
            "LOCKWARDEN_PRIVATE_KEY": fake.private_key_pem,
            "LOCKWARDEN_GITHUB_API_URL": fake.api_url,
            "LOCKWARDEN_DATABASE_URL": url,
            "LOCKWARDEN_CACHE_DIR": str(tmp / "cache"),
            "LOCKWARDEN_BUILDER": "none",
            "LOCKWARDEN_WORKER_HEARTBEAT_S": "1",
            "LOCKWARDEN_STALLED_AFTER_S": "3",
        }
        self.logs = tmp

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def refresh(self, repo: str, kind: Any = "refresh") -> str:
        request = JobRequest(kind, repo, self.installation.id, f"{kind}-{repo}-{time.time()}")
        job_id = self.queue.enqueue(request)
        assert job_id is not None
        return job_id

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()

    def status(self, job_id: str) -> str:
        return str(
            self.rows("SELECT status::text FROM procrastinate_jobs WHERE id = %s", job_id)[0][0]
        )

    def wait(self, condition: Callable[[], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = {
                    p.name: p.read_text(errors="replace")[-2000:] for p in self.logs.glob("*.log")
                }
                raise AssertionError(f"timed out; worker logs: {logs}")
            time.sleep(0.1)

    def intervals(self) -> dict[int, tuple[str, datetime, datetime]]:
        """Job id -> (repository, first start, end) from Procrastinate's events."""
        found = self.rows(
            "SELECT j.id, j.lock, "
            "min(e.at) FILTER (WHERE e.type = 'started'), "
            "max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) "
            "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
            "WHERE j.queue_name = 'lockwarden' GROUP BY j.id, j.lock"
        )
        return {int(r[0]): (str(r[1]), r[2], r[3]) for r in found}

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        self.queue.close()


@pytest.fixture
def cluster(
    fake: FakeGitHub, package_index: PackageIndex, postgres_cluster: PostgresCluster, tmp_path: Path
) -> Iterator[Cluster]:
    package_index.publish("beta", "1.0.0")
    url = postgres_cluster.create_database(f"reliability_{next(_databases)}")
    made = Cluster(fake, package_index, url, tmp_path)
    try:
        yield made
    finally:
        made.close()


def refresh_pulls(fake: FakeGitHub, repo: str) -> list[Any]:
    return [p for p in fake.pulls(repo) if p.head == "lockwarden/refresh"]


def test_a_job_whose_worker_is_killed_is_finished_by_another_with_one_pull_request(
    cluster: Cluster,
) -> None:
    job = cluster.refresh("acme/one")
    first = cluster.start_worker()
    cluster.wait(lambda: cluster.status(job) == "doing")
    time.sleep(0.5)  # in the middle of the job: cloning or compiling
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert cluster.status(job) == "doing"  # nobody told the database

    second = cluster.start_worker()
    cluster.wait(lambda: cluster.status(job) == "succeeded")
    assert len(refresh_pulls(cluster.fake, "acme/one")) == 1
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0


def test_sigterm_lets_the_running_job_finish(cluster: Cluster) -> None:
    worker = cluster.start_worker()
    job = cluster.refresh("acme/two")
    cluster.wait(lambda: cluster.status(job) == "doing")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    assert cluster.status(job) == "succeeded"
    assert len(refresh_pulls(cluster.fake, "acme/two")) == 1


def test_a_burst_is_one_refresh_and_repositories_run_in_parallel_but_never_one_twice(
    cluster: Cluster,
) -> None:
    settings = Settings(
        webhook_secret=SecretStr(cluster.fake.webhook_secret), app_slug=cluster.fake.app_slug
    )
    client = TestClient(create_app(settings, cluster.queue))
    for _ in range(10):
        body = cluster.fake.encode(cluster.fake.payload("push", repo="acme/one"))
        headers = cluster.fake.webhook_headers("push", body)
        assert client.post("/webhook", content=body, headers=headers).status_code == 202
    waiting = cluster.rows(
        "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'lockwarden' AND lock = %s",
        "acme/one",
    )
    assert waiting == [(1,)]  # ten pushes, one refresh
    cluster.refresh("acme/two")
    cluster.refresh("acme/one", kind="onboard")  # same repository, another job

    cluster.start_worker()
    cluster.start_worker()
    cluster.wait(
        lambda: (
            cluster.rows(
                "SELECT count(*) FROM procrastinate_jobs "
                "WHERE queue_name = 'lockwarden' AND status = 'succeeded'"
            )
            == [(3,)]
        ),
        timeout=180,
    )
    spans = cluster.intervals()
    one = sorted((start, end) for repo, start, end in spans.values() if repo == "acme/one")
    two = [(start, end) for repo, start, end in spans.values() if repo == "acme/two"]
    assert len(one) == 2
    assert one[0][1] <= one[1][0]  # one repository: one job at a time
    (two_start, two_end), first_one = two[0], one[0]
    # two repositories: in parallel
    assert two_start < first_one[1]
    assert first_one[0] < two_end
    assert len(refresh_pulls(cluster.fake, "acme/one")) == 1
    assert len(refresh_pulls(cluster.fake, "acme/two")) == 1
