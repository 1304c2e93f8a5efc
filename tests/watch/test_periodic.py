"""The watch's pass as the queue's periodic task: registered on the scheduler queue, run
by a process that runs no repository jobs, once per period across every process."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.cli import _queue
from bot.github.client import GitHubApp
from bot.jobs.postgres import SCHEDULER_QUEUE, WATCH_TASK_NAME, ProcrastinateQueue
from bot.sandbox.egress import EgressPolicy
from bot.settings import app_credentials
from bot.watch.tick import PassResult, ReleaseWatch
from tests.support.fake_github import FakeGitHub
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex
from tests.watch.conftest import queued, record, rows

pytestmark = pytest.mark.slow


def test_the_pass_runs_periodically_on_the_scheduler_queue(
    database_url: str, index: PackageIndex, tmp_path: Path
) -> None:
    with ProcrastinateQueue(database_url) as setup:
        setup.migrate()
        index.publish("beta", "1.0.0")
        record(setup, tmp_path, index, "acme/a", {"beta": "1.0.0"}, "[beta]")
    watch = ReleaseWatch(cache_dir=None, policy=EgressPolicy(("127.0.0.1",)))
    passes: list[PassResult] = []
    ran = threading.Event()
    stop = threading.Event()

    def one_pass(queue: ProcrastinateQueue) -> None:
        passes.append(watch.run(queue))
        ran.set()

    with ProcrastinateQueue(database_url, watch=one_pass, watch_cron="* * * * * *") as periodic:
        thread = threading.Thread(
            target=periodic.run_worker,
            args=(None,),
            kwargs={"queues": (SCHEDULER_QUEUE,), "install_signal_handlers": False, "stop": stop},
        )
        thread.start()
        try:
            assert ran.wait(timeout=15)
        finally:
            stop.set()
            thread.join(timeout=30)
    watch.close()
    assert passes[0].asked == 1
    assert queued(database_url) == []
    (done,) = rows(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'",
        WATCH_TASK_NAME,
    )
    assert done[0] >= 1


@pytest.mark.parametrize(("minutes", "cron"), [(10, "*/10 * * * *"), (1, "*/1 * * * *"), (0, None)])
def test_the_app_runs_the_pass_at_the_configured_interval(
    fake: FakeGitHub, tmp_path: Path, minutes: int, cron: str | None
) -> None:
    settings = Bot(
        fake,
        tmp_path / "cache",
        database_url=SecretStr("postgresql://lockwarden@127.0.0.1:1/none"),
        watch_interval_min=minutes,
    ).settings
    with _queue(settings, GitHubApp(app_credentials(settings))) as queue:  # connects lazily
        crons = {
            key[0]: task.cron for key, task in queue.app.periodic_registry.periodic_tasks.items()
        }
    assert crons.get(WATCH_TASK_NAME) == cron
