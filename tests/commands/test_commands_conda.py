"""Review commands on a conda environment, end to end through the fake GitHub: the refresh
pull request shows each platform's explicit lock, and pin, unpin and rollback edit
``environment.yml`` and re-solve every platform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.commands.handlers import quote_lines
from bot.jobs.branches import REFRESH_BRANCH, ROLLBACK_BRANCH
from bot.jobs.queue import JobRequest
from bot.locks.formats.conda.environment import parse_explicit_lock
from tests.support.conda_channel import CondaChannel, publish_graph, publish_mlcore_2, start_channel
from tests.support.fake_github import FakeGitHub, PullRequest
from tests.support.github_app import Bot

REPO = "acme/conda-ml"
LOCKS = ("conda-linux-64.lock", "conda-linux-aarch64.lock")


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[CondaChannel]:
    with start_channel(tmp_path / "channel") as served:
        publish_graph(served)
        yield served


class CondaWorld:
    """A conda repository refreshed once and merged, then a full refresh proposing
    mlcore 1.1 -> 2.0 (and mathlib, which 2.0 needs newer)."""

    def __init__(self, fake: FakeGitHub, channel: CondaChannel, tmp_path: Path) -> None:
        self.fake = fake
        self.installation = fake.create_installation("acme")
        fake.create_repo(
            REPO,
            files={
                "environment.yml": (
                    f"name: train\nchannels:\n  - {channel.url}\ndependencies:\n"
                    "  - python 3.11.*\n  - mlcore\n"
                    "platforms:\n  - linux-64\n  - linux-aarch64\n"
                ),
                # Listed: discovery proposes only specs that already have a lock.
                ".github/lockwarden.yml": (
                    "environments:\n  - name: train\n    backend: conda\n"
                    "    spec: environment.yml\n    platforms: [linux-64, linux-aarch64]\n"
                ),
            },
            installation=self.installation,
        )
        fake.set_permission(REPO, "alice", "write")
        self.bot = Bot(fake, tmp_path / "cache")
        self.bot.run_all(self.bot.deliver("push", fake.payload("push", repo=REPO)))
        first = self.open_pull()
        fake.merge_pull(REPO, first.number, method="squash")
        self.bot.run_all(
            self.bot.deliver(
                "pull_request",
                fake.payload("pull_request", "closed", repo=REPO, number=first.number),
            )
        )
        publish_mlcore_2(channel)
        self.bot.runner.run(
            JobRequest("refresh", REPO, self.installation.id, "full-1", {"mode": "full"})
        )
        self.pull = self.open_pull()

    def open_pull(self) -> PullRequest:
        found = [p for p in self.fake.pulls(REPO, state="open") if p.head == REFRESH_BRANCH]
        assert len(found) == 1
        return found[0]

    def comment(self, body: str) -> None:
        payload = self.fake.payload(
            "issue_comment", "created", repo=REPO, number=self.pull.number, body=body, user="alice"
        )
        self.bot.run_all(self.bot.deliver("issue_comment", payload))

    def reply_to(self, command: str) -> str:
        bot = self.fake.bot_login
        found = [
            c.body
            for c in self.fake.comments(REPO, self.pull.number)
            if c.user == bot and c.body.startswith(quote_lines([command]) + "\n")
        ]
        assert found
        return found[-1]

    def file(self, path: str, ref: str = REFRESH_BRANCH) -> str:
        return self.fake.read_file(REPO, path, ref=ref)

    def versions(self, lock: str, ref: str = REFRESH_BRANCH) -> dict[str, str]:
        return parse_explicit_lock(self.file(lock, ref), lock).versions()

    def body(self) -> str:
        pull: Any = self.fake.repo(REPO).pulls[self.pull.number]
        return str(pull.body)


@pytest.fixture
def world(fake: FakeGitHub, channel: CondaChannel, tmp_path: Path) -> CondaWorld:
    return CondaWorld(fake, channel, tmp_path)


@pytest.mark.slow
def test_refresh_pull_request_shows_every_platform_lock(world: CondaWorld) -> None:
    for lock in LOCKS:
        assert world.versions(lock)["mlcore"] == "2.0"
    body = world.body()
    assert "`train`" in body
    assert "mlcore" in body
    assert "1.1" in body
    assert "2.0" in body
    assert "`conda-linux-aarch64.lock`" in body


@pytest.mark.slow
def test_pin_unpin_and_rollback_edit_environment_yml(world: CondaWorld) -> None:
    world.comment("/lockwarden pin mlcore==1.1 -- breaks the tokenizer")

    spec = world.file("environment.yml")
    assert f"- mlcore==1.1  # pinned by @alice in #{world.pull.number} (was: mlcore)" in spec
    for lock in LOCKS:
        assert world.versions(lock)["mlcore"] == "1.1"
    assert "mlcore" in world.reply_to("/lockwarden pin mlcore==1.1 -- breaks the tokenizer")

    world.comment("/lockwarden unpin mlcore")

    assert "  - mlcore\n" in world.file("environment.yml")
    for lock in LOCKS:
        assert world.versions(lock)["mlcore"] == "2.0"

    world.comment("/lockwarden rollback mlcore")

    spec = world.file("environment.yml")
    assert "- mlcore==1.1  # rolled back by @alice" in spec
    for lock in LOCKS:
        assert world.versions(lock)["mlcore"] == "1.1"


@pytest.mark.slow
def test_pin_with_a_range_is_refused_for_conda(world: CondaWorld) -> None:
    before = world.file("environment.yml")

    world.comment("/lockwarden pin 'mlcore<2'")

    assert "exact pins only" in world.reply_to("/lockwarden pin 'mlcore<2'")
    assert world.file("environment.yml") == before


@pytest.mark.slow
def test_rollback_to_known_good_restores_every_platform_lock(world: CondaWorld) -> None:
    world.fake.merge_pull(REPO, world.pull.number, method="squash")
    for lock in LOCKS:
        assert world.versions(lock, "main")["mlcore"] == "2.0"

    world.comment("/lockwarden rollback --to known-good")

    pulls = [p for p in world.fake.pulls(REPO, state="open") if p.head == ROLLBACK_BRANCH]
    assert len(pulls) == 1
    for lock in LOCKS:
        assert world.versions(lock, ROLLBACK_BRANCH)["mlcore"] == "1.1"
        assert world.versions(lock, ROLLBACK_BRANCH)["mathlib"] == "1.2"
