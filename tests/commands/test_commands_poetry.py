"""Review commands on a Poetry project, end to end through the fake GitHub: the refresh pull
request carries ``poetry.lock`` and the exported requirements file, and pin and unpin edit
``pyproject.toml`` (comments kept) and re-lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs.branches import REFRESH_BRANCH
from bot.jobs.queue import JobRequest
from bot.locks.formats.poetry.project import parse_poetry_lock
from bot.locks.lockfile import parse_lockfile
from tests.support.fake_github import FakeGitHub, PullRequest
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex
from tests.support.poetry_tool import find_test_poetry

pytestmark = pytest.mark.slow

REPO = "acme/poetry-ml"

PYPROJECT = """\
[tool.poetry]
name = "service"
version = "0.1.0"
description = ""
authors = []
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
# the serving stack
alpha = ">=1.0"

[tool.poetry.group.dev.dependencies]
devtool = ">=0.1"

[[tool.poetry.source]]
name = "local"
url = "{index}"
priority = "primary"
"""


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    package_index.publish("alpha", "1.0.0", ["beta>=1.0"])
    package_index.publish("beta", "1.0.0")
    package_index.publish("devtool", "0.1.0")
    return package_index


class PoetryWorld:
    def __init__(self, fake: FakeGitHub, index: PackageIndex, tmp_path: Path) -> None:
        self.fake = fake
        installation = fake.create_installation("acme")
        fake.create_repo(
            REPO,
            files={
                "pyproject.toml": PYPROJECT.format(index=index.url),
                ".github/lockwarden.yml": (
                    "environments:\n  - name: serve\n    backend: poetry\n"
                    "    spec: pyproject.toml\n    export: requirements.txt\n"
                ),
            },
            installation=installation,
        )
        fake.set_permission(REPO, "alice", "write")
        self.bot = Bot(fake, tmp_path / "cache", poetry_bin=find_test_poetry())
        self.bot.run_all(self.bot.deliver("push", fake.payload("push", repo=REPO)))
        first = self.open_pull()
        fake.merge_pull(REPO, first.number, method="squash")
        self.bot.run_all(
            self.bot.deliver(
                "pull_request",
                fake.payload("pull_request", "closed", repo=REPO, number=first.number),
            )
        )
        index.publish("alpha", "1.1.0", ["beta>=1.0"])
        self.bot.runner.run(JobRequest("refresh", REPO, installation.id, "full", {"mode": "full"}))
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

    def file(self, path: str) -> str:
        return self.fake.read_file(REPO, path, ref=REFRESH_BRANCH)

    def locked(self) -> dict[str, str]:
        return parse_poetry_lock(self.file("poetry.lock"), "poetry.lock").versions()

    def exported(self) -> dict[str, str]:
        text = self.file("requirements.txt")
        return parse_lockfile(text, "requirements.txt").versions()


def test_pin_and_unpin_on_a_poetry_project(
    fake: FakeGitHub, index: PackageIndex, tmp_path: Path
) -> None:
    world = PoetryWorld(fake, index, tmp_path)
    assert world.locked()["alpha"] == "1.1.0"
    assert world.exported() == {"alpha": "1.1.0", "beta": "1.0.0"}

    world.comment("/lockwarden pin alpha==1.0.0 -- waiting for the 1.1 fix")

    pyproject = world.file("pyproject.toml")
    assert "# the serving stack\n" in pyproject
    assert (
        f'alpha = "==1.0.0"  # pinned by @alice in #{world.pull.number} '
        '(was: alpha = ">=1.0"): waiting for the 1.1 fix'
    ) in pyproject
    assert world.locked()["alpha"] == "1.0.0"
    assert world.exported()["alpha"] == "1.0.0"

    world.comment("/lockwarden unpin alpha")

    assert 'alpha = ">=1.0"\n' in world.file("pyproject.toml")
    assert world.locked()["alpha"] == "1.1.0"
    assert world.exported()["alpha"] == "1.1.0"
