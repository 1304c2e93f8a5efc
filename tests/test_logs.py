"""Log lines: JSON objects carrying the job's fields, for our loggers and everyone else's."""

from __future__ import annotations

import io
import itertools
import json
import logging
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from bot.cli import main
from bot.github.client import AppCredentials
from bot.jobs.postgres import ProcrastinateQueue
from bot.jobs.queue import InMemoryQueue, JobRequest, run_worker
from bot.logs import HANDLER_NAME, JOB_FIELDS, bind_job, bind_stage, configure_logging
from bot.observe import run_job, stage
from bot.settings import Settings
from tests.pipeline.conftest import env_config, new_repo, publish_graph
from tests.support.index_server import PackageIndex
from tests.support.postgres import PostgresCluster

_databases = itertools.count(1)


def configured(**settings: Any) -> io.StringIO:
    """Logging configured into a buffer; returns the buffer."""
    out = io.StringIO()
    configure_logging(Settings(**settings), stream=out)
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, parsed: each must be one JSON object."""
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


def request(kind: Any = "refresh", repo: str = "acme/app", delivery: str = "d-1") -> JobRequest:
    return JobRequest(kind=kind, repo=repo, installation_id=7, delivery_id=delivery)


def test_lines_inside_a_job_and_a_stage_carry_its_fields() -> None:
    out = configured()
    log = logging.getLogger("bot.example")
    with bind_job("42", "acme/app", "d-1", kind="refresh"):
        log.info("before any stage")
        with bind_stage("compile"):
            log.info("compiling %s", "serve")
        log.info("after the stage")
    log.info("outside the job")

    before, compiling, after, outside = lines(out)
    job = {"job_id": "42", "kind": "refresh", "repo": "acme/app", "delivery_id": "d-1"}
    assert compiling == {
        **job,
        "stage": "compile",
        "message": "compiling serve",
        "level": "info",
        "logger": "bot.example",
        "timestamp": compiling["timestamp"],
    }
    assert list(compiling)[:4] == ["timestamp", "level", "logger", "message"]
    assert compiling["timestamp"].endswith("Z")
    assert before.items() >= job.items()
    assert "stage" not in before
    assert "stage" not in after  # each binding is undone when its block ends
    assert not set(JOB_FIELDS) & set(outside)


def test_stdlib_records_of_other_libraries_come_out_as_json() -> None:
    out = configured()
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://0.0.0.0:8000")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("psycopg.pool").exception("connection failed")
    # Procrastinate logs a job's start and end outside the job's thread, naming the job in
    # ``extra``: those lines get the job's fields too, and nothing else of its dump.
    logging.getLogger("procrastinate.worker").info(
        "Job lockwarden.run_job[9] ended with status: Success",
        extra={
            "action": "job_success",
            "job": {"id": 9, "task_kwargs": {"kind": "onboard", "repo": "acme/one"}},
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated call", DeprecationWarning, stacklevel=1)

    uvicorn, failed, procrastinate, warned = lines(out)
    assert (uvicorn["logger"], uvicorn["message"]) == (
        "uvicorn.error",
        "Uvicorn running on http://0.0.0.0:8000",
    )
    assert failed["level"] == "error"
    assert "ValueError: boom" in failed["exception"]
    assert procrastinate["job_id"] == "9"
    assert (procrastinate["kind"], procrastinate["repo"]) == ("onboard", "acme/one")
    assert "job" not in procrastinate
    assert "action" not in procrastinate
    assert warned["logger"] == "py.warnings"
    assert "DeprecationWarning: deprecated call" in warned["message"]


def test_level_and_console_format() -> None:
    out = configured(log_level="warning")
    logging.getLogger("bot.example").info("dropped")
    logging.getLogger("bot.example").warning("kept")
    assert [line["message"] for line in lines(out)] == ["kept"]

    console = configured(log_format="console")
    with bind_job("7", "acme/app", "d-2"):
        logging.getLogger("bot.example").info("for people")
    text = console.getvalue()
    assert "for people" in text
    assert "job_id=7" in text
    assert "repo=acme/app" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_configuring_again_replaces_the_handler() -> None:
    configured()
    second = configured()
    root = logging.getLogger()
    assert [h.get_name() for h in root.handlers].count(HANDLER_NAME) == 1
    logging.getLogger("bot.example").info("once")
    assert len(lines(second)) == 1


def test_log_settings() -> None:
    assert Settings().log_level == "INFO"
    assert Settings().log_format == "json"
    assert Settings(log_level="debug").log_level == "DEBUG"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(log_level="chatty")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(log_format="xml")  # type: ignore[arg-type]


def test_run_job_binds_the_job_and_logs_how_it_ended() -> None:
    out = configured()

    def handle(job: JobRequest) -> None:
        logging.getLogger("bot.jobs.runner").info("working")

    def broken(job: JobRequest) -> None:
        raise RuntimeError("GitHub is down")

    run_job(handle, request(), "12")
    with pytest.raises(RuntimeError):
        run_job(broken, request(), "13")

    started, working, finished, started_again, failed = lines(out)
    assert started["message"] == started_again["message"] == "job refresh acme/app started"
    assert all(line["repo"] == "acme/app" for line in lines(out))
    assert [line["job_id"] for line in lines(out)] == ["12", "12", "12", "13", "13"]
    assert working["message"] == "working"
    assert (finished["outcome"], finished["level"]) == ("done", "info")
    assert isinstance(finished["duration_s"], float)
    assert (failed["outcome"], failed["reason"], failed["level"]) == (
        "error",
        "unexpected",
        "warning",
    )
    assert "GitHub is down" in failed["message"]


def test_in_memory_worker_binds_each_job() -> None:
    out = configured()
    queue = InMemoryQueue()
    stop = threading.Event()
    seen: list[str] = []

    def handle(job: JobRequest) -> None:
        logging.getLogger("bot.example").info("handling")
        seen.append(job.repo)
        if len(seen) == 2:
            stop.set()

    queue.enqueue(request(repo="acme/one", delivery="d-1"))
    queue.enqueue(request(repo="acme/two", delivery="d-2"))
    thread = threading.Thread(target=run_worker, args=(queue, handle, stop), kwargs={"poll_s": 0})
    thread.start()
    thread.join(30)
    handling = [line for line in lines(out) if line["message"] == "handling"]
    assert [(line["job_id"], line["repo"]) for line in handling] == [
        ("1", "acme/one"),
        ("2", "acme/two"),
    ]


@pytest.mark.slow
def test_a_real_refresh_logs_each_stage_inside_the_job(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    repo = new_repo(tmp_path, publish_graph(package_index))
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    out = configured()

    with bind_job("5", "acme/app", "d-5", kind="refresh"):
        result = repo.refresh(build=False)
    assert not result.failed

    timed = [line for line in lines(out) if line["logger"] == "bot.observe"]
    assert [line["stage"] for line in timed] == ["configure", "compile", "signals", "publish"]
    assert all(line["job_id"] == "5" and line["delivery_id"] == "d-5" for line in timed)
    assert all(line["message"].startswith(f"stage {line['stage']} took") for line in timed)


@pytest.mark.slow
def test_procrastinate_jobs_log_their_own_id(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database(f"logs_test_{next(_databases)}")
    out = configured()
    with ProcrastinateQueue(url, timeout_s=2, retry_exponential_wait=0) as queue:
        queue.migrate()
        first = queue.enqueue(request("onboard", "acme/one", "d-1"))
        second = queue.enqueue(request("onboard", "acme/two", "d-2"))

        def handle(job: JobRequest) -> None:
            with stage("checkout"):
                logging.getLogger("bot.git").info("cloning %s", job.repo)

        queue.run_worker(handle, install_signal_handlers=False, wait=False)

    cloning = [line for line in lines(out) if line["logger"] == "bot.git"]
    assert [(line["job_id"], line["repo"], line["stage"]) for line in cloning] == [
        (first, "acme/one", "checkout"),
        (second, "acme/two", "checkout"),
    ]
    assert all(line["kind"] == "onboard" for line in cloning)
    # Procrastinate's own line about each job carries the job's fields as well.
    ended = [
        line
        for line in lines(out)
        if "ended with status" in line["message"] and "run_job" in line["message"]
    ]
    assert {(line["job_id"], line["repo"]) for line in ended} == {
        (first, "acme/one"),
        (second, "acme/two"),
    }


def test_serve_configures_logging_and_hands_uvicorn_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import bot.github.client
    import bot.settings

    seen: dict[str, Any] = {}

    def serve_forever(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        seen["handlers"] = [h.get_name() for h in logging.getLogger().handlers]

    # A real App object: nothing here makes a request to GitHub.
    credentials = AppCredentials(1, "unused", "http://127.0.0.1:9")
    monkeypatch.setattr(bot.settings, "app_credentials", lambda settings: credentials)
    monkeypatch.setattr(uvicorn, "run", serve_forever)
    result = CliRunner().invoke(
        main,
        ["serve"],
        env={
            "LOCKWARDEN_WEBHOOK_SECRET": "s",
            "LOCKWARDEN_DATABASE_URL": None,
            "LOCKWARDEN_LOG_LEVEL": "debug",
        },
    )
    assert result.exit_code == 0, result.output
    assert seen["log_config"] is None  # uvicorn's lines go through our handler
    assert seen["log_level"] == "debug"
    assert HANDLER_NAME in seen["handlers"]
    assert logging.getLogger().level == logging.DEBUG
