"""The commands' world: a repository on the fake GitHub with a merged refresh (a known-good
set) and an open full-refresh pull request, and helpers to comment on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.commands.handlers import quote_lines
from bot.jobs.branches import REFRESH_BRANCH
from bot.jobs.queue import JobRequest
from tests.support.fake_github import FakeGitHub, PullRequest
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex

REPO = "acme/ml"


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    package_index.publish("beta", "1.0.0")
    package_index.publish("gamma", "1.0.0")
    return package_index


class World:
    """A repository whose locks were refreshed once and merged (a known-good set), then a
    full refresh pull request proposing beta 1.0.0 -> 2.0.0 and gamma 1.0.0 -> 1.1.0."""

    def __init__(self, fake: FakeGitHub, index: PackageIndex, tmp_path: Path) -> None:
        self.fake = fake
        self.index = index
        self.installation = fake.create_installation("acme")
        fake.create_repo(
            REPO,
            files={
                "requirements/serve.in": f"--index-url {index.url}\nbeta\n",
                "requirements/train.in": f"--index-url {index.url}\n-c serve.txt\nbeta\ngamma\n",
                # Listed: discovery proposes only specs that already have a lock.
                ".github/lockwarden.yml": (
                    "environments:\n"
                    "  - name: serve\n    spec: requirements/serve.in\n"
                    "  - name: train\n    spec: requirements/train.in\n"
                ),
            },
            installation=self.installation,
        )
        fake.set_permission(REPO, "alice", "write")
        fake.set_permission(REPO, "bob", "read")
        self.bot = Bot(fake, tmp_path / "cache")
        self.bot.run_all(self.bot.deliver("push", fake.payload("push", repo=REPO)))
        first = self.open_pull(REFRESH_BRANCH)
        self.first_merge = fake.merge_pull(REPO, first.number, method="squash")
        self.bot.run_all(
            self.bot.deliver(
                "pull_request",
                fake.payload("pull_request", "closed", repo=REPO, number=first.number),
            )
        )
        index.publish("beta", "1.1.0")
        index.publish("beta", "2.0.0")
        index.publish("gamma", "1.1.0")
        self.run(JobRequest("refresh", REPO, self.installation.id, "full-1", {"mode": "full"}))
        self.pull = self.open_pull(REFRESH_BRANCH)

    def run(self, job: JobRequest) -> None:
        self.bot.runner.run(job)

    def open_pull(self, head: str) -> PullRequest:
        found = [p for p in self.fake.pulls(REPO, state="open") if p.head == head]
        assert len(found) == 1, [(p.number, p.head, p.state) for p in self.fake.pulls(REPO)]
        return found[0]

    def comment(self, body: str, *, user: str = "alice", number: int | None = None) -> int:
        """Comment on the refresh pull request (or ``number``) and run what it enqueued;
        the comment's id."""
        payload = self.fake.payload(
            "issue_comment",
            "created",
            repo=REPO,
            number=number or self.pull.number,
            body=body,
            user=user,
        )
        self.bot.run_all(self.bot.deliver("issue_comment", payload))
        comment: Any = payload["comment"]
        return int(comment["id"])

    def replies(self, number: int | None = None) -> list[str]:
        bot = self.fake.bot_login
        return [
            c.body for c in self.fake.comments(REPO, number or self.pull.number) if c.user == bot
        ]

    def reply_to(self, command: str) -> str:
        """The one reply to ``command`` (the newest comment quoting it)."""
        found = [r for r in self.replies() if r.startswith(quote_lines([command]) + "\n")]
        assert found, self.replies()
        return found[-1]

    def reactions(self, comment_id: int) -> list[str]:
        return [r.content for r in self.fake.repo(REPO).comments[comment_id].reactions]

    def file(self, path: str, ref: str = REFRESH_BRANCH) -> str:
        return self.fake.read_file(REPO, path, ref=ref)


@pytest.fixture
def world(fake: FakeGitHub, index: PackageIndex, tmp_path: Path) -> World:
    return World(fake, index, tmp_path)
