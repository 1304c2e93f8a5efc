"""Prometheus metrics of the pipeline, the jobs and the queue; /metrics and the worker's port."""

from __future__ import annotations

import itertools
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from bot.cli import main
from bot.errors import CompileError, ConfigError
from bot.github.client import AppCredentials
from bot.jobs.branches import JobOutcome
from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.metrics import (
    REGISTRY,
    STAGES,
    QueueCollector,
    expose,
    failure_reason,
    start_metrics_server,
)
from bot.observe import run_job, stage
from bot.settings import Settings
from tests.pipeline.conftest import env_config, new_repo, publish_graph
from tests.server import client, make_app
from tests.server.test_metrics import samples
from tests.support.index_server import PackageIndex
from tests.support.postgres import PostgresCluster

_databases = itertools.count(1)
DOWN_URL = "postgresql://postgres@127.0.0.1:1/none"


def value(name: str, **labels: str) -> float:
    """A sample of the process registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stage_count(name: str) -> float:
    return value("lockwarden_stage_duration_seconds_count", stage=name)


def request(kind: Any = "refresh", repo: str = "acme/app", delivery: str = "d-1") -> JobRequest:
    return JobRequest(kind=kind, repo=repo, installation_id=7, delivery_id=delivery)


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    """A new, empty database per test: the counts are this test's jobs only."""
    return postgres_cluster.create_database(f"metrics_test_{next(_databases)}")


@pytest.fixture
def queue(database_url: str) -> Iterator[ProcrastinateQueue]:
    with ProcrastinateQueue(database_url, timeout_s=2, retry_exponential_wait=0) as migrated:
        migrated.migrate()
        yield migrated


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[Any, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return samples(answer.read().decode())


# -- stages ----------------------------------------------------------------------------------


def test_every_stage_is_exported_from_the_start() -> None:
    text = generate_latest(REGISTRY).decode()
    for name in STAGES:
        assert f'lockwarden_stage_duration_seconds_count{{stage="{name}"}}' in text


def test_stage_is_timed_when_it_raises_and_as_a_decorator() -> None:
    before = stage_count("build"), stage_count("checkout")

    with pytest.raises(RuntimeError), stage("build"):
        raise RuntimeError("the builder died")

    @stage("checkout")
    def clone() -> str:
        time.sleep(0.01)
        return "cloned"

    assert clone() == "cloned"
    assert clone() == "cloned"
    assert (stage_count("build"), stage_count("checkout")) == (before[0] + 1, before[1] + 2)
    assert value("lockwarden_stage_duration_seconds_sum", stage="checkout") >= 0.02


def test_the_pipeline_alone_loads_neither_metrics_nor_structlog() -> None:
    """``lockwarden run`` serves no metrics and configures no logging: it skips their imports."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.worker, bot.cli; "
            "print(sorted({'structlog', 'prometheus_client'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_real_refresh_times_its_stages(tmp_path: Path, package_index: PackageIndex) -> None:
    repo = new_repo(tmp_path, publish_graph(package_index))
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    before = {name: stage_count(name) for name in STAGES}
    compile_seconds = value("lockwarden_stage_duration_seconds_sum", stage="compile")

    result = repo.refresh(build=False)
    assert not result.failed
    assert repo.lock_path("serve").exists()
    added = {name: stage_count(name) - before[name] for name in STAGES}
    # No Dockerfile and no images asked for: no build or test stage; the lock was written.
    assert added == {
        "checkout": 0,
        "configure": 1,
        "compile": 1,
        "signals": 1,
        "pins": 0,
        "build": 0,
        "test": 0,
        "publish": 1,
    }
    assert value("lockwarden_stage_duration_seconds_sum", stage="compile") > compile_seconds

    repo.refresh(build=False, dry_run=True)  # a dry run publishes nothing
    assert stage_count("publish") == before["publish"] + 1
    assert stage_count("compile") == before["compile"] + 2


# -- jobs ------------------------------------------------------------------------------------


def test_failure_reason_is_the_error_code_or_unexpected() -> None:
    assert failure_reason(CompileError("no solution")) == "compile"
    assert failure_reason(ConfigError(".github/lockwarden.yml", "bad")) == "config"
    assert failure_reason(KeyError("x")) == "unexpected"


def test_jobs_are_counted_by_kind_outcome_and_failure_code() -> None:
    def failures(reason: str) -> float:
        return value("lockwarden_job_failures_total", kind="refresh", reason=reason)

    def jobs(kind: str, outcome: str) -> float:
        return value("lockwarden_jobs_total", kind=kind, outcome=outcome)

    before = {
        "compile": failures("compile"),
        "unexpected": failures("unexpected"),
        "error": jobs("refresh", "error"),
        "opened": jobs("refresh", "opened"),
        "done": jobs("cleanup", "done"),
    }

    def compile_fails(job: JobRequest) -> None:
        raise CompileError("ResolutionImpossible")

    def crashes(job: JobRequest) -> None:
        raise ZeroDivisionError

    with pytest.raises(CompileError):
        run_job(compile_fails, request(), "1")
    with pytest.raises(CompileError):
        run_job(compile_fails, request(), "1")  # its retry
    with pytest.raises(ZeroDivisionError):
        run_job(crashes, request(), "2")
    outcome = run_job(lambda job: JobOutcome("refresh", job.repo, "opened", 3), request(), "3")
    assert isinstance(outcome, JobOutcome)
    run_job(lambda job: None, request("cleanup"), "4")

    assert failures("compile") == before["compile"] + 2
    assert failures("unexpected") == before["unexpected"] + 1
    assert jobs("refresh", "error") == before["error"] + 3
    assert jobs("refresh", "opened") == before["opened"] + 1
    assert jobs("cleanup", "done") == before["done"] + 1


@pytest.mark.slow
def test_the_postgres_worker_counts_its_runs_and_retries(queue: ProcrastinateQueue) -> None:
    before = value("lockwarden_job_failures_total", kind="onboard", reason="unexpected")
    calls: list[JobRequest] = []

    def flaky(job: JobRequest) -> JobOutcome:
        calls.append(job)
        if len(calls) < 3:
            raise ConnectionError("GitHub is unreachable")
        return JobOutcome("onboard", job.repo, "opened", 1)

    opened = value("lockwarden_jobs_total", kind="onboard", outcome="opened")
    queue.enqueue(request("onboard"))
    queue.run_worker(flaky, install_signal_handlers=False, wait=False)
    assert value("lockwarden_job_failures_total", kind="onboard", reason="unexpected") == (
        before + 2
    )
    assert value("lockwarden_jobs_total", kind="onboard", outcome="opened") == opened + 1


# -- the queue -------------------------------------------------------------------------------


@pytest.mark.slow
def test_queue_collector_reads_jobs_by_state(queue: ProcrastinateQueue) -> None:
    def broken(job: JobRequest) -> None:
        if job.repo == "acme/bad":
            raise RuntimeError("always")

    for index, repo in enumerate(("acme/one", "acme/two", "acme/bad")):
        queue.enqueue(request("onboard", repo, f"done-{index}"))
    queue.run_worker(broken, install_signal_handlers=False, wait=False)
    for index in range(2):
        queue.enqueue(request("onboard", f"acme/waiting-{index}", f"todo-{index}"))

    assert queue.job_counts() == {"succeeded": 2, "failed": 1, "todo": 2}
    registry = CollectorRegistry(auto_describe=True)
    registry.register(QueueCollector(queue))
    found = samples(generate_latest(registry).decode())
    assert found[("lockwarden_queue_depth", ())] == 2
    by_state = {
        dict(labels)["state"]: count
        for (name, labels), count in found.items()
        if name == "lockwarden_queue_jobs"
    }
    assert by_state == {
        "todo": 2,
        "doing": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "aborted": 0,
    }


@pytest.mark.slow
def test_the_receivers_metrics_show_the_queue_jobs_and_webhooks(
    queue: ProcrastinateQueue,
) -> None:
    queue.enqueue(request("onboard", "acme/one"))
    found = samples(client(make_app(queue)).get("/metrics").text)
    assert found[("lockwarden_queue_depth", ())] == 1
    assert found[("lockwarden_queue_jobs", (("state", "todo"),))] == 1
    assert ("lockwarden_webhook_latency_seconds_count", ()) in found
    assert ("lockwarden_stage_duration_seconds_count", (("stage", "compile"),)) in found
    assert ("lockwarden_jobs_enqueued_total", (("kind", "refresh"),)) in found


def test_queue_collector_is_silent_when_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ProcrastinateQueue(DOWN_URL, timeout_s=1) as down:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(QueueCollector(down, timeout_s=0.5))
        with caplog.at_level(logging.WARNING, logger="bot.metrics"):
            text = generate_latest(registry).decode()
        assert "lockwarden_queue" not in text
        assert any("queue metrics left out" in r.getMessage() for r in caplog.records)

        # /metrics still answers, with everything else in it.
        response = client(make_app(down)).get("/metrics")
        assert response.status_code == 200
        found = samples(response.text)
        assert ("lockwarden_queue_depth", ()) not in found
        assert ("lockwarden_webhook_latency_seconds_count", ()) in found
        assert ("lockwarden_stage_duration_seconds_count", (("stage", "build"),)) in found


def test_an_in_memory_queue_adds_no_queue_metrics() -> None:
    found = samples(client(make_app()).get("/metrics").text)
    assert not any(name.startswith("lockwarden_queue") for name, _ in found)
    registry = expose(CollectorRegistry(auto_describe=True), object())
    assert "lockwarden_queue" not in generate_latest(registry).decode()


# -- the worker's port -----------------------------------------------------------------------


def test_metrics_port_setting() -> None:
    assert Settings().metrics_port == 0
    assert Settings(metrics_port=9100).metrics_port == 9100
    with pytest.raises(ValidationError):
        Settings(metrics_port=70000)


def test_metrics_server_serves_the_process_registry() -> None:
    assert start_metrics_server(0) is None  # 0: off
    server = start_metrics_server(free_port())
    assert server is not None
    try:
        found = scrape(server.port)
        assert ("lockwarden_stage_duration_seconds_count", (("stage", "test"),)) in found
        assert not any(name.startswith("lockwarden_queue") for name, _ in found)
    finally:
        server.close()


@pytest.mark.slow
def test_worker_metrics_port(
    monkeypatch: pytest.MonkeyPatch, queue: ProcrastinateQueue, database_url: str
) -> None:
    import bot.github.client
    import bot.jobs.postgres
    import bot.settings

    port = free_port()
    queue.enqueue(request("onboard", "acme/one"))
    scraped: dict[Any, float] = {}

    def run_worker(self: ProcrastinateQueue, handle: Any, **kwargs: Any) -> None:
        scraped.update(scrape(port))

    # A real App object: nothing here makes a request to GitHub.
    credentials = AppCredentials(1, "unused", "http://127.0.0.1:9")
    monkeypatch.setattr(bot.settings, "app_credentials", lambda settings: credentials)
    monkeypatch.setattr(bot.jobs.postgres.ProcrastinateQueue, "run_worker", run_worker)
    env = {"LOCKWARDEN_DATABASE_URL": database_url, "LOCKWARDEN_METRICS_PORT": str(port)}
    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code == 0, result.output
    assert scraped[("lockwarden_queue_depth", ())] == 1
    with pytest.raises(urllib.error.URLError):  # closed when the worker stopped
        scrape(port)

    # The option wins over the setting; a port in use stops start-up.
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))  # noqa: S104 - the metrics server binds every address
        busy.listen()
        taken = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["worker", "--metrics-port", str(taken)], env=env)
    assert result.exit_code == 2
    assert f"cannot serve metrics on port {taken}" in result.output
