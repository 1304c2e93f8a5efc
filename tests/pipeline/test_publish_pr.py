"""Publishing a refresh against the fake GitHub, with the pipeline's result made by hand: the
pull request's draft status follows each run's tests, a closed pull request is left alone,
and a draft switch GitHub refuses is a note, not a failed run."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.git import BotIdentity, clone
from bot.github.client import AppCredentials, GitHubApp, TokenScope
from bot.github.ensure import DRAFT_ADVICE
from bot.github.scopes import PUBLISH_PULL_REQUEST
from bot.jobs.branches import REFRESH_BRANCH
from bot.pipeline.checkout import Workspace
from bot.pipeline.publish_pr import publish_pull_request
from bot.results import PublishResult, TestResult
from tests.jobs.test_runner import lock_result, pipeline_result
from tests.support.fake_github import FakeGitHub, Installation

OLD_LOCK = "numpy==1.26.4\n"
# What GitHub answers when the installation token may not switch the draft status.
FORBIDDEN = {
    "data": {"convertPullRequestToDraft": None},
    "errors": [
        {
            "type": "FORBIDDEN",
            "path": ["convertPullRequestToDraft"],
            "locations": [{"line": 1, "column": 22}],
            "message": "Resource not accessible by integration",
        }
    ],
}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake(module_fake: FakeGitHub) -> FakeGitHub:
    """The module's tests share one fake GitHub, each in repositories of its own."""
    return module_fake


@pytest.fixture(scope="module")
def acme(fake: FakeGitHub) -> tuple[Installation, GitHubApp]:
    """The App's installation on ``acme``, and the App as a worker holds it."""
    credentials = AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url)
    return fake.create_installation("acme"), GitHubApp(credentials)


@pytest.fixture
def repo(fake: FakeGitHub, acme: tuple[Installation, GitHubApp]) -> str:
    name = f"acme/models-{next(_names)}"
    fake.create_repo(name, files={"requirements/serve.txt": OLD_LOCK}, installation=acme[0])
    return name


class Publisher:
    """Runs ``publish_pull_request`` as a refresh job does: a fresh clone, the refresh job's
    token, the bot's identity."""

    def __init__(self, fake: FakeGitHub, app: GitHubApp, scope: TokenScope, root: Path) -> None:
        self.fake, self.app, self.scope, self.root = fake, app, scope, root
        self.runs = itertools.count(1)

    def token(self) -> str:
        return self.app.installation_token(self.scope)

    def node_id(self, number: int) -> str:
        """Pull request ``number``'s GraphQL id, as REST shows it."""
        assert self.scope.repository is not None
        owner, name = self.scope.repository.split("/")
        with self.app.installation_client(self.scope) as gh:
            return str(gh.rest.pulls.get(owner, name, number).parsed_data.node_id)

    def __call__(self, *tests: TestResult) -> PublishResult:
        repo = self.scope.repository
        assert repo is not None
        into = self.root / f"run-{next(self.runs)}"
        checkout = clone(f"{self.fake.git_url}/{repo}.git", into, token=self.token)
        with self.app.installation_client(self.scope) as gh:
            return publish_pull_request(
                gh,
                checkout,
                pipeline_result(
                    Workspace(checkout.path, repo), lock_result(old_text=OLD_LOCK), tests=tests
                ),
                branch=REFRESH_BRANCH,
                token=self.token,
                identity=BotIdentity(),
            )


@pytest.fixture
def publish(
    fake: FakeGitHub, acme: tuple[Installation, GitHubApp], repo: str, tmp_path: Path
) -> Publisher:
    installation, app = acme
    return Publisher(fake, app, TokenScope(installation.id, repo, PUBLISH_PULL_REQUEST), tmp_path)


PASSED = TestResult("serve", "passed")
FAILED = TestResult("serve", "failed", log_tail="E   assert 2 == 1")


def mutations(fake: FakeGitHub) -> list[dict[str, Any]]:
    """The variables of every GraphQL request so far."""
    return [r.json()["variables"] for r in fake.requests_to("POST", r"/graphql$")]


def test_the_draft_status_follows_the_tests_green_red_green(
    fake: FakeGitHub, repo: str, publish: Publisher
) -> None:
    before = len(mutations(fake))

    green = publish(PASSED)
    ready = fake.pull(repo, green.pull_number or 0).draft
    red = publish(FAILED)
    drafted = fake.pull(repo, red.pull_number or 0).draft
    green_again = publish(PASSED)
    still_green = publish(PASSED)

    assert [r.action for r in (green, red, green_again, still_green)] == [
        "opened",
        "updated",
        "updated",
        "updated",
    ]
    assert {r.pull_number for r in (red, green_again, still_green)} == {green.pull_number}
    assert (ready, drafted) == (False, True)
    pull = fake.pull(repo, green.pull_number or 0)
    assert (pull.state, pull.draft) == ("open", False)
    assert [r.note for r in (green, red, green_again, still_green)] == [None] * 4
    # One switch each way, naming the pull request as REST shows it; a run that finds the
    # status right sends none.
    assert mutations(fake)[before:] == [{"id": publish.node_id(pull.number)}] * 2


def test_a_run_that_tested_nothing_leaves_the_draft_status_as_it_is(
    fake: FakeGitHub, repo: str, publish: Publisher
) -> None:
    first = publish(FAILED)
    skipped = TestResult("serve", "skipped", reason="no image")
    before = len(mutations(fake))

    second = publish(skipped)
    third = publish()

    assert second.pull_number == third.pull_number == first.pull_number
    assert fake.pull(repo, first.pull_number or 0).draft
    assert len(mutations(fake)) == before


def test_a_closed_pull_request_is_not_touched(
    fake: FakeGitHub, repo: str, publish: Publisher
) -> None:
    first = publish(PASSED)
    closed = fake.close_pull(repo, first.pull_number or 0)
    before = len(mutations(fake))

    second = publish(FAILED)

    assert second.action == "opened"
    assert second.pull_number != first.pull_number
    assert fake.pull(repo, second.pull_number or 0).draft  # opened as a draft: no switch
    old = fake.pull(repo, closed.number)
    assert (old.state, old.draft) == ("closed", False)
    assert len(mutations(fake)) == before


def test_a_refused_switch_is_a_note_and_the_run_still_publishes(
    fake: FakeGitHub, repo: str, publish: Publisher
) -> None:
    first = publish(PASSED)
    fake.fail_next("POST", r"/graphql$", status=200, body=FORBIDDEN)

    second = publish(FAILED)

    assert (second.action, second.pull_number) == ("updated", first.pull_number)
    assert second.note == (
        f"{repo}#{first.pull_number}: GitHub would not convert it to a draft (Resource not "
        f"accessible by integration). {DRAFT_ADVICE['FORBIDDEN']}"
    )
    pull = fake.pull(repo, first.pull_number or 0)
    assert not pull.draft
    assert "Tests failed" in (pull.body or "")  # the report itself was published
    [check] = fake.check_runs(repo, head_sha=second.commit_sha, name="lockwarden")
    assert check.conclusion == "failure"


@pytest.fixture(autouse=True)
def _no_leftover_faults(fake: FakeGitHub) -> Iterator[None]:
    yield
    assert not fake.faults, "a fault meant for a test was not used"
