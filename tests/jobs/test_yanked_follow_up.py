"""A refresh whose lock still pins a yanked release queues the targeted refresh that moves off
it, once: the fake GitHub, a local index serving PEP 691 pages, real pip-compile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.github.client import GitHubApp
from bot.jobs.payloads import RefreshPayload, Yank
from bot.jobs.queue import InMemoryQueue, JobRequest
from bot.jobs.runner import JobRunner
from bot.settings import app_credentials
from tests.jobs.test_runner import job
from tests.support.fake_github import FakeGitHub, Installation
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex, start_index

pytestmark = pytest.mark.slow

REPO = "acme/svc"
REASON = "broken wheel: imports fail on 3.11"
CONFIG = "environments:\n  - {name: serve, spec: requirements/serve.in}\n"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    with start_index(tmp_path / "index", serve_json=True) as served:
        served.publish("wirelib", "1.0")
        yield served


@pytest.fixture
def bot(fake: FakeGitHub, tmp_path: Path) -> Bot:
    return Bot(fake, tmp_path / "cache", upstream_lookups=True)


def merged_repo(bot: Bot, index: PackageIndex, requirement: str) -> Installation:
    """The repository with ``wirelib==1.0`` locked on its default branch."""
    fake = bot.fake
    installation = fake.create_installation("acme")
    fake.create_repo(
        REPO,
        files={
            ".github/lockwarden.yml": CONFIG,
            "requirements/serve.in": f"--index-url {index.url}\n{requirement}\n",
        },
        installation=installation,
    )
    first = bot.runner.run(job(installation, "refresh", REPO))
    assert first.pull_number is not None, first
    fake.merge_pull(REPO, first.pull_number, method="squash")
    return installation


def runner_with(bot: Bot, queue: InMemoryQueue) -> JobRunner:
    app = GitHubApp(app_credentials(bot.settings))
    return JobRunner(app, bot.settings, git_base_url=bot.fake.git_url, queue=queue)


def queued(queue: InMemoryQueue) -> list[JobRequest]:
    out = []
    while (item := queue.pop()) is not None:
        out.append(item.request)
    return out


def test_a_yanked_pin_queues_one_move_off_it_with_the_reason(bot: Bot, index: PackageIndex) -> None:
    installation = merged_repo(bot, index, "wirelib")
    index.mark_yanked("wirelib", "1.0", REASON)
    index.publish("wirelib", "1.1")
    queue = InMemoryQueue()
    runner = runner_with(bot, queue)

    runner.run(job(installation, "refresh", REPO))  # minimal: keeps the yanked pin

    [move] = queued(queue)
    payload = RefreshPayload.of(move)
    assert (move.kind, payload.mode, payload.packages) == ("refresh", "targeted", ("wirelib",))
    assert payload.yanked == (Yank("wirelib", "1.0", REASON),)
    assert move.payload["trigger"] == "yanked"

    # The move itself: off 1.0, the reason quoted in the pull request, nothing queued again.
    done = runner.run(move)
    assert done.pull_number is not None
    pull = bot.fake.pull(REPO, done.pull_number)
    assert REASON in (pull.body or "")
    assert "wirelib==1.1" in bot.fake.read_file(REPO, "requirements/serve.txt", ref=pull.head)
    assert queued(queue) == []


def test_a_pin_the_spec_holds_on_the_yanked_version_asks_only_once(
    bot: Bot, index: PackageIndex
) -> None:
    installation = merged_repo(bot, index, "wirelib==1.0")
    index.mark_yanked("wirelib", "1.0", REASON)
    queue = InMemoryQueue()
    runner = runner_with(bot, queue)

    runner.run(job(installation, "refresh", REPO))
    [move] = queued(queue)
    runner.run(move)  # cannot move: the spec pins 1.0 exactly

    assert queued(queue) == []


def test_no_yank_queues_nothing(bot: Bot, index: PackageIndex) -> None:
    installation = merged_repo(bot, index, "wirelib")
    queue = InMemoryQueue()

    runner_with(bot, queue).run(job(installation, "refresh", REPO))

    assert queued(queue) == []
