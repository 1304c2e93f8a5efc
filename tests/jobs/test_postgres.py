"""The durable queue on a real PostgreSQL: dedupe, merged refreshes, the worker, retries, and
the receiver answering 503 while the database is down."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.github.client import AppCredentials
from bot.jobs.postgres import (
    MAX_RETRIES,
    REDELIVER_TASK_NAME,
    SCHEDULER_QUEUE,
    ProcrastinateQueue,
)
from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.server import messages
from tests.server import client, make_app, new_delivery_id, post
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.slow

_databases = itertools.count(1)

INSTALLED = {
    "action": "created",
    "installation": {"id": 7},
    "repositories": [{"full_name": "acme/one"}, {"full_name": "acme/two"}],
}


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    """A new, empty database per test, so tests never see each other's jobs."""
    return postgres_cluster.create_database(f"queue_test_{next(_databases)}")


@pytest.fixture
def queue(database_url: str) -> Iterator[ProcrastinateQueue]:
    with ProcrastinateQueue(database_url, timeout_s=2, retry_exponential_wait=0) as migrated:
        migrated.migrate()
        yield migrated


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def jobs(url: str) -> list[tuple[Any, ...]]:
    """(id, status, lock, queueing_lock, delivery id, attempts) of every repository job,
    oldest first (the scheduler's periodic passes are left out)."""
    return rows(
        url,
        "SELECT id, status::text, lock, queueing_lock, args->>'delivery_id', attempts "
        "FROM procrastinate_jobs WHERE queue_name = 'lockwarden' ORDER BY id",
    )


def request(
    kind: Any = "onboard", repo: str = "acme/one", delivery: str | None = None, **payload: Any
) -> JobRequest:
    return JobRequest(
        kind=kind,
        repo=repo,
        installation_id=7,
        delivery_id=delivery or new_delivery_id(),
        payload=payload,
    )


# -- schema ----------------------------------------------------------------------------------


def test_migrate_is_idempotent(database_url: str) -> None:
    with ProcrastinateQueue(database_url) as queue:
        queue.migrate()
        queue.migrate()
        assert queue.enqueue(request()) is not None
        queue.migrate()
    tables = {
        name
        for (name,) in rows(
            database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert {"procrastinate_jobs", "lockwarden_deliveries"} <= tables
    assert len(jobs(database_url)) == 1


def test_migrate_fails_clearly_without_a_server() -> None:
    with (
        ProcrastinateQueue("postgresql://postgres@127.0.0.1:1/none", timeout_s=1) as queue,
        pytest.raises(psycopg.OperationalError),
    ):
        queue.migrate()


# -- enqueue ---------------------------------------------------------------------------------


def test_enqueue_stores_the_job_and_refuses_its_key_twice(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    job = request("command", payload_key="value")
    job_id = queue.enqueue(job)
    assert job_id is not None
    assert queue.enqueue(job) is None
    assert jobs(database_url) == [(int(job_id), "todo", "acme/one", None, job.delivery_id, 0)]
    assert rows(database_url, "SELECT dedupe_key, job_id FROM lockwarden_deliveries") == [
        (job.dedupe_key, int(job_id))
    ]
    (args,) = rows(database_url, "SELECT args FROM procrastinate_jobs")
    assert args[0]["payload"] == {"payload_key": "value"}


def test_one_delivery_fans_out_into_jobs_of_distinct_keys(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    delivery = new_delivery_id()
    first = queue.enqueue(request("onboard", "acme/one", delivery))
    second = queue.enqueue(request("onboard", "acme/two", delivery))
    assert first is not None
    assert second is not None
    assert first != second
    assert queue.enqueue(request("onboard", "acme/two", delivery)) is None
    assert len(jobs(database_url)) == 2


def test_concurrent_redeliveries_are_accepted_once(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    job = request()
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: queue.enqueue(job), range(8)))
    assert len([a for a in answers if a is not None]) == 1
    assert len(jobs(database_url)) == 1


def test_a_payload_that_is_not_json_stores_nothing(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    job = request(payload=object())
    with pytest.raises(TypeError):
        queue.enqueue(job)
    assert jobs(database_url) == []
    assert rows(database_url, "SELECT * FROM lockwarden_deliveries") == []


def test_refreshes_of_one_repo_merge_while_one_waits(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    first = request("refresh", "acme/one", branch="main")
    second = request("refresh", "acme/one", branch="main")
    first_id = queue.enqueue(first)
    assert first_id is not None
    assert queue.enqueue(second) == first_id
    assert queue.enqueue(second) is None  # its redelivery is a duplicate
    other_repo = queue.enqueue(request("refresh", "acme/two"))
    other_kind = queue.enqueue(request("onboard", "acme/one"))
    assert len({first_id, other_repo, other_kind}) == 3

    waiting = [job for job in jobs(database_url) if job[3] == "refresh:acme/one"]
    assert len(waiting) == 1
    assert waiting[0][:4] == (int(first_id), "todo", "acme/one", "refresh:acme/one")
    assert rows(
        database_url,
        "SELECT job_id FROM lockwarden_deliveries WHERE dedupe_key = ANY(%s)",
        [first.dedupe_key, second.dedupe_key],
    ) == [(int(first_id),), (int(first_id),)]

    # Once the waiting refresh has run, the next one queues a new job.
    queue.run_worker(lambda job: None, install_signal_handlers=False, wait=False)
    third = queue.enqueue(request("refresh", "acme/one"))
    assert third is not None
    assert third != first_id


# -- the worker ------------------------------------------------------------------------------


def test_worker_runs_each_job_through_handle(queue: ProcrastinateQueue, database_url: str) -> None:
    sent = [request("onboard", "acme/one"), request("refresh", "acme/two", sha="abc")]
    for job in sent:
        assert queue.enqueue(job) is not None
    handled: list[JobRequest] = []
    queue.run_worker(handled.append, install_signal_handlers=False, wait=False)
    assert handled == sent
    assert {job[1] for job in jobs(database_url)} == {"succeeded"}


def test_a_failing_job_is_retried(queue: ProcrastinateQueue, database_url: str) -> None:
    calls: list[JobRequest] = []

    def flaky(job: JobRequest) -> None:
        calls.append(job)
        if len(calls) < 3:
            raise ConnectionError("GitHub is unreachable")

    queue.enqueue(request())
    queue.run_worker(flaky, install_signal_handlers=False, wait=False)
    assert len(calls) == 3
    ((_, status, *_, attempts),) = jobs(database_url)
    assert (status, attempts) == ("succeeded", 3)


def test_a_job_that_keeps_failing_stops_after_the_last_retry(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    calls: list[JobRequest] = []

    def broken(job: JobRequest) -> None:
        calls.append(job)
        raise RuntimeError("always")

    queue.enqueue(request())
    queue.run_worker(broken, install_signal_handlers=False, wait=False)
    assert len(calls) == 1 + MAX_RETRIES
    ((_, status, *_),) = jobs(database_url)
    assert status == "failed"


def test_a_waiting_worker_picks_up_new_jobs_and_stops_on_request(
    queue: ProcrastinateQueue,
) -> None:
    handled: list[JobRequest] = []
    done = threading.Event()
    stop = threading.Event()

    def handle(job: JobRequest) -> None:
        handled.append(job)
        done.set()

    thread = threading.Thread(
        target=queue.run_worker,
        args=(handle,),
        kwargs={"install_signal_handlers": False, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        job = request()
        queue.enqueue(job)
        assert done.wait(30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert handled == [job]


# -- readiness and the receiver --------------------------------------------------------------


def test_ping(queue: ProcrastinateQueue) -> None:
    queue.ping()
    with (
        ProcrastinateQueue("postgresql://postgres@127.0.0.1:1/none", timeout_s=1) as down,
        pytest.raises(psycopg.OperationalError),
    ):
        down.ping()


def test_the_receiver_accepts_a_delivery_durably(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    delivery = new_delivery_id()
    answer = post(client(make_app(queue)), "installation", INSTALLED, delivery=delivery)
    assert answer.status_code == 202
    assert answer.json()["status"] == messages.STATUS_QUEUED
    assert len(answer.json()["jobs"]) == 2

    # A restarted receiver (empty in-memory cache, new connections) still refuses it.
    with ProcrastinateQueue(database_url) as restarted:
        again = post(client(make_app(restarted)), "installation", INSTALLED, delivery=delivery)
    assert again.status_code == 202
    assert again.json()["status"] == messages.STATUS_DUPLICATE
    assert len(jobs(database_url)) == 2


def test_the_receiver_answers_503_while_the_database_is_down(
    postgres_cluster: PostgresCluster, database_url: str
) -> None:
    with ProcrastinateQueue(database_url, timeout_s=1) as queue:
        queue.migrate()
        web = client(make_app(queue))
        assert web.get("/healthz").status_code == 200
        delivery = new_delivery_id()
        postgres_cluster.stop()
        try:
            down = post(web, "installation", INSTALLED, delivery=delivery)
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "60"
            assert web.get("/healthz").status_code == 503
        finally:
            postgres_cluster.start()
        # GitHub redelivers later; by then the pool has reconnected (it backs off between
        # attempts, so the first redelivery right after the restart may still get a 503).
        deadline = time.monotonic() + 60
        while True:
            redelivered = post(web, "installation", INSTALLED, delivery=delivery)
            if redelivered.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert redelivered.status_code == 202
        assert redelivered.json()["status"] == messages.STATUS_QUEUED
        assert web.get("/healthz").status_code == 200
    assert sorted(job[4] for job in jobs(database_url)) == [delivery, delivery]


# -- the command line ------------------------------------------------------------------------


def run_cli(*args: str, url: str | None) -> Any:
    env = {"LOCKWARDEN_DATABASE_URL": url, "LOCKWARDEN_WEBHOOK_SECRET": "s"}
    return CliRunner().invoke(main, list(args), env=env)


def test_cli_migrate(database_url: str) -> None:
    for _ in range(2):
        result = run_cli("migrate", url=database_url)
        assert result.exit_code == 0, result.output
    assert rows(database_url, "SELECT count(*) FROM lockwarden_deliveries") == [(0,)]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "LOCKWARDEN_DATABASE_URL is not set"),
        ("postgresql://postgres@127.0.0.1:1/none", "cannot use the job queue's database"),
    ],
    ids=["unset", "unreachable"],
)
def test_cli_migrate_fails_clearly(url: str | None, message: str) -> None:
    result = run_cli("migrate", url=url)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("with_database", "flags", "queue_type", "worker"),
    [
        (False, [], InMemoryQueue, True),
        (True, [], ProcrastinateQueue, False),
        (True, ["--with-worker"], ProcrastinateQueue, True),
    ],
    ids=["memory", "database", "database-with-worker"],
)
def test_cli_serve_picks_the_queue(
    monkeypatch: pytest.MonkeyPatch,
    queue: ProcrastinateQueue,
    database_url: str,
    with_database: bool,
    flags: list[str],
    queue_type: type,
    worker: bool,
) -> None:
    import uvicorn

    import bot.server.app
    import bot.settings

    seen: dict[str, Any] = {}
    real_create_app = bot.server.app.create_app

    def create_app(settings: Any, used: Any, **kwargs: Any) -> Any:
        seen["queue"] = used
        return real_create_app(settings, used, **kwargs)

    def serve_forever(*args: Any, **kwargs: Any) -> None:
        seen["threads"] = {thread.name for thread in threading.enumerate()}

    # A real App object: serve makes no request to GitHub before a delivery arrives.
    credentials = AppCredentials(1, "unused", "http://127.0.0.1:9")
    monkeypatch.setattr(bot.settings, "app_credentials", lambda settings: credentials)
    monkeypatch.setattr(bot.server.app, "create_app", create_app)
    monkeypatch.setattr(uvicorn, "run", serve_forever)
    result = run_cli("serve", *flags, url=database_url if with_database else None)
    assert result.exit_code == 0, result.output
    assert type(seen["queue"]) is queue_type
    assert ("lockwarden-worker" in seen["threads"]) is worker


def test_a_worker_on_a_database_without_the_schema_says_to_migrate(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.github.client
    import bot.settings

    # A real App object: nothing here makes a request to GitHub.
    credentials = AppCredentials(1, "unused", "http://127.0.0.1:9")
    monkeypatch.setattr(bot.settings, "app_credentials", lambda settings: credentials)
    result = CliRunner().invoke(main, ["worker"], env={"LOCKWARDEN_DATABASE_URL": database_url})
    assert result.exit_code == 2
    assert "database schema is missing or out of date: run lockwarden migrate" in result.output


def test_a_deliverys_jobs_are_stored_together_or_not_at_all(
    queue: ProcrastinateQueue, database_url: str
) -> None:
    delivery = new_delivery_id()
    first = request(repo="acme/one", delivery=delivery)
    unstorable = request(repo="acme/two", delivery=delivery, note={"a set is no JSON"})

    with pytest.raises(TypeError):
        queue.enqueue_all((first, unstorable))
    assert jobs(database_url) == []

    stored = queue.enqueue_all((first, request(repo="acme/two", delivery=delivery)))
    assert [row[0] for row in jobs(database_url)] == [int(i) for i in stored if i is not None]
    assert len(stored) == 2


def test_a_database_restart_under_a_stream_of_deliveries_loses_nothing_acknowledged(
    postgres_cluster: PostgresCluster, database_url: str
) -> None:
    """Deliveries keep arriving while PostgreSQL stops and starts again: each is answered
    2xx with its job stored, or 5xx (GitHub can redeliver it); never 2xx without the job."""
    answers: list[tuple[str, int]] = []
    stop = threading.Event()
    with ProcrastinateQueue(database_url, timeout_s=1) as queue:
        queue.migrate()
        web = client(make_app(queue))

        def send() -> None:
            while not stop.is_set():
                delivery = new_delivery_id()
                answers.append(
                    (delivery, post(web, "installation", INSTALLED, delivery=delivery).status_code)
                )
                time.sleep(0.02)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(1)
            postgres_cluster.stop()
            time.sleep(2)
        finally:
            postgres_cluster.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(s == 202 for _, s in answers[-3:]):
            time.sleep(0.2)
        stop.set()
        sender.join(timeout=30)
    statuses = {status for _, status in answers}
    assert statuses <= {202, 503}
    assert 503 in statuses  # some arrived while the database was down
    accepted = sorted(d for d, s in answers if s == 202)
    stored = sorted(job[4] for job in jobs(database_url))
    # two jobs per accepted delivery (two repositories), none for a refused one
    assert stored == sorted(accepted * 2)


# -- redelivering failed webhooks --------------------------------------------------------------


def test_the_redeliver_task_runs_periodically_on_the_scheduler_queue(database_url: str) -> None:
    with ProcrastinateQueue(database_url) as setup:
        setup.migrate()
    calls = threading.Event()
    stop = threading.Event()
    with ProcrastinateQueue(
        database_url, redeliver=calls.set, redeliver_cron="* * * * * *"
    ) as periodic:
        thread = threading.Thread(
            target=periodic.run_worker,
            args=(None,),
            kwargs={
                "queues": (SCHEDULER_QUEUE,),
                "install_signal_handlers": False,
                "stop": stop,
            },
        )
        thread.start()
        try:
            assert calls.wait(timeout=15)
        finally:
            stop.set()
            thread.join(timeout=30)
    (done,) = rows(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'",
        REDELIVER_TASK_NAME,
    )
    assert done[0] >= 1
