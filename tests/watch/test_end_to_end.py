"""The release watch end to end: a worker records what a repository locks, an upload (or a
yank) on the index makes the next pass queue a targeted refresh, and the worker opens the
pull request, quoting the yank reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.github.client import GitHubApp
from bot.jobs.postgres import QUEUE_NAME, ProcrastinateQueue
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner
from bot.sandbox.egress import EgressPolicy
from bot.settings import app_credentials
from bot.watch.store import WatchBook
from bot.watch.tick import ReleaseWatch
from tests.support.fake_github import FakeGitHub, PullRequest
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex
from tests.watch.conftest import REPO, queued, watched_repo

pytestmark = pytest.mark.slow


@pytest.fixture
def runner(fake: FakeGitHub, queue: ProcrastinateQueue, tmp_path: Path) -> JobRunner:
    """A worker's runner that records schedules and pins in the database."""
    settings = Bot(fake, tmp_path / "cache").settings
    return JobRunner(
        GitHubApp(app_credentials(settings)),
        settings,
        git_base_url=fake.git_url,
        schedules=queue,
        watch=WatchBook(queue),
    )


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[ReleaseWatch]:
    made = ReleaseWatch(cache_dir=tmp_path / "watch", policy=EgressPolicy(("127.0.0.1",)))
    try:
        yield made
    finally:
        made.close()


def work(queue: ProcrastinateQueue, runner: JobRunner) -> None:
    queue.run_worker(runner.run, queues=(QUEUE_NAME,), install_signal_handlers=False, wait=False)


def refresh_pull(fake: FakeGitHub) -> PullRequest:
    (pull,) = [p for p in fake.pulls(REPO, state="open") if p.head == "lockwarden/refresh"]
    return pull


def test_an_upload_leads_to_a_pull_request(
    fake: FakeGitHub,
    index: PackageIndex,
    queue: ProcrastinateQueue,
    database_url: str,
    runner: JobRunner,
    watch: ReleaseWatch,
) -> None:
    index.publish("beta", "1.0.0")
    installation_id = watched_repo(fake, index, "1.0.0")
    # onboarding a configured repository records what it locks
    queue.enqueue(JobRequest("onboard", REPO, installation_id, "install-1"))
    work(queue, runner)
    assert watch.run(queue).asked == 1

    index.publish("beta", "1.1.0")
    assert watch.run(queue).enqueued == (REPO,)
    (job,) = queued(database_url)
    work(queue, runner)

    pull = refresh_pull(fake)
    lock = fake.read_file(REPO, "requirements/serve.txt", ref="lockwarden/refresh")
    assert "beta==1.1.0" in lock
    assert "was yanked" not in (pull.body or "")
    assert job.payload["packages"] == ["beta"]


def test_a_yanked_pin_is_refreshed_off_with_the_reason_quoted(
    fake: FakeGitHub,
    index: PackageIndex,
    queue: ProcrastinateQueue,
    runner: JobRunner,
    watch: ReleaseWatch,
) -> None:
    for version in ("1.0.0", "1.1.0"):
        index.publish("beta", version)
    installation_id = watched_repo(fake, index, "1.1.0")
    queue.enqueue(JobRequest("onboard", REPO, installation_id, "install-1"))
    work(queue, runner)
    watch.run(queue)

    index.mark_yanked("beta", "1.1.0", "broken <b>build</b> @maintainers")
    assert watch.run(queue).enqueued == (REPO,)
    work(queue, runner)

    pull = refresh_pull(fake)
    lock = fake.read_file(REPO, "requirements/serve.txt", ref="lockwarden/refresh")
    assert "beta==1.0.0" in lock
    body = pull.body or ""
    assert "beta 1.1.0 was yanked: broken &lt;b&gt;build&lt;/b&gt; @\u2060maintainers" in body
    assert "<b>build" not in body  # the index's text is quoted, never rendered
