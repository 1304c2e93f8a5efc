"""``lockwarden jobs``: the newest jobs of the PostgreSQL queue, as a table or JSON."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.jobs.postgres import MAX_RETRIES, ProcrastinateQueue
from bot.jobs.queue import JobRequest
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.slow

_databases = itertools.count(1)


def jobs(*args: str, url: str | None) -> Result:
    return CliRunner().invoke(main, ["jobs", *args], env={"LOCKWARDEN_DATABASE_URL": url})


def request(kind: Any, repo: str, delivery: str) -> JobRequest:
    return JobRequest(kind=kind, repo=repo, installation_id=7, delivery_id=delivery)


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"jobs_cli_test_{next(_databases)}")


@pytest.fixture
def filled(database_url: str) -> dict[str, str]:
    """Four jobs, oldest first: acme/one succeeded, acme/bad failed (after its retries),
    acme/two succeeded, and a refresh of acme/two still waiting. Repo -> job id."""
    ids: dict[str, str] = {}
    with ProcrastinateQueue(database_url, timeout_s=2, retry_exponential_wait=0) as queue:
        queue.migrate()
        for repo in ("acme/one", "acme/bad", "acme/two"):
            job_id = queue.enqueue(request("onboard", repo, f"d-{repo}"))
            assert job_id is not None
            ids[repo] = job_id

        def handle(job: JobRequest) -> None:
            if job.repo == "acme/bad":
                raise RuntimeError("always")

        queue.run_worker(handle, install_signal_handlers=False, wait=False)
        waiting = queue.enqueue(request("refresh", "acme/two", "d-waiting"))
        assert waiting is not None
        ids["waiting"] = waiting
    return ids


def test_json_lists_the_newest_first_with_their_times(
    database_url: str, filled: dict[str, str]
) -> None:
    result = jobs("--json", url=database_url)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [job["id"] for job in listed] == [
        int(filled[key]) for key in ("waiting", "acme/two", "acme/bad", "acme/one")
    ]
    waiting, two, bad, one = listed
    assert {key: waiting[key] for key in ("kind", "repo", "state", "attempts")} == {
        "kind": "refresh",
        "repo": "acme/two",
        "state": "todo",
        "attempts": 0,
    }
    assert waiting["delivery_id"] == "d-waiting"
    assert waiting["started_at"] is None
    assert waiting["finished_at"] is None
    assert (one["state"], one["attempts"]) == ("succeeded", 1)
    assert (bad["state"], bad["attempts"]) == ("failed", 1 + MAX_RETRIES)
    assert bad["scheduled_at"] is not None  # its retries were scheduled
    for done in (one, two, bad):
        queued, started, finished = (
            datetime.fromisoformat(done[key]) for key in ("queued_at", "started_at", "finished_at")
        )
        assert queued <= started <= finished
        assert finished.utcoffset() is not None  # times carry their zone


def test_filters_and_limit(database_url: str, filled: dict[str, str]) -> None:
    def ids(*args: str) -> list[int]:
        result = jobs("--json", *args, url=database_url)
        assert result.exit_code == 0, result.output
        return [job["id"] for job in json.loads(result.output)]

    assert ids("--state", "failed") == [int(filled["acme/bad"])]
    assert ids("--state", "todo") == [int(filled["waiting"])]
    assert ids("--state", "doing") == []
    assert ids("--repo", "acme/two") == [int(filled["waiting"]), int(filled["acme/two"])]
    assert ids("--repo", "acme/two", "--state", "succeeded") == [int(filled["acme/two"])]
    assert ids("--limit", "2") == [int(filled["waiting"]), int(filled["acme/two"])]


def test_the_table(database_url: str, filled: dict[str, str]) -> None:
    result = jobs(url=database_url)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == [
        "ID",
        "KIND",
        "REPO",
        "STATE",
        "ATTEMPTS",
        "QUEUED",
        "SCHEDULED",  # shown because the failed job's retries were scheduled
        "STARTED",
        "FINISHED",
    ]
    assert [row.split()[:5] for row in rows] == [
        [filled["waiting"], "refresh", "acme/two", "todo", "0"],
        [filled["acme/two"], "onboard", "acme/two", "succeeded", "1"],
        [filled["acme/bad"], "onboard", "acme/bad", "failed", str(1 + MAX_RETRIES)],
        [filled["acme/one"], "onboard", "acme/one", "succeeded", "1"],
    ]
    assert rows[0].split()[-1] == "-"  # the waiting job has not finished
    # Times are UTC, to the second; "-" where there is none.
    queued, scheduled, started, finished = re.split(r" {2,}", rows[1])[5:]
    for moment in (queued, started, finished):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", moment), rows[1]
    assert scheduled == "-"

    without_retries = jobs("--state", "succeeded", url=database_url)
    assert "SCHEDULED" not in without_retries.output


def test_an_empty_queue(database_url: str) -> None:
    with ProcrastinateQueue(database_url) as queue:
        queue.migrate()
    result = jobs(url=database_url)
    assert (result.exit_code, result.output) == (0, "no jobs\n")
    assert json.loads(jobs("--json", url=database_url).output) == []


def test_a_database_without_the_queue_tables_says_to_migrate(database_url: str) -> None:
    result = jobs(url=database_url)
    assert result.exit_code == 2
    assert "run `lockwarden migrate`" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "LOCKWARDEN_DATABASE_URL is not set"),
        ("postgresql://postgres@127.0.0.1:1/none", "cannot use the job queue's database"),
    ],
    ids=["unset", "unreachable"],
)
def test_fails_clearly_without_a_database(url: str | None, message: str) -> None:
    result = jobs(url=url)
    assert result.exit_code == 2
    assert message in result.output


def test_invalid_options_are_usage_errors() -> None:
    assert jobs("--state", "sleeping", url=None).exit_code == 2
    assert jobs("--limit", "0", url=None).exit_code == 2
