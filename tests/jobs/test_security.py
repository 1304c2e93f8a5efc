"""The ``lockwarden/security`` pull request end to end: the fake GitHub, a local package index
and the local advisory service; real pip-compile runs (no image builder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.github.client import GitHubApp
from bot.jobs.branches import REFRESH_BRANCH, JobOutcome
from bot.jobs.queue import InMemoryQueue
from bot.jobs.runner import JobRunner
from bot.jobs.security import SECURITY_BRANCH, SECURITY_LABEL
from bot.locks.formats import parse_any_lock
from bot.settings import app_credentials
from tests.jobs.test_runner import job
from tests.support.advisory_service import AdvisoryService
from tests.support.fake_github import FakeGitHub, Installation, PullRequest
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex, start_index

pytestmark = pytest.mark.slow

REPO = "acme/svc"
ADVISORY = {
    "id": "GHSA-w1re-l1b0-0001",
    "aliases": ["CVE-2099-7001"],
    "summary": "wirelib trusts any certificate",
    "details": "Certificate checks are skipped.",
    "fixed_in": ["1.1", "1.3"],
    "link": "https://osv.dev/vulnerability/GHSA-w1re-l1b0-0001",
    "source": "osv",
    "withdrawn": None,
}
CONFIG = """\
min_release_age: 3d
environments:
  - name: serve
    spec: requirements/serve.in
  - name: dev
    spec: requirements/dev.in
    constraints: [serve]
"""


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    """An index with upload times (PEP 691 JSON): ``wirelib`` 1.0 only, for now."""
    with start_index(tmp_path / "index", serve_json=True) as served:
        served.publish("wirelib", "1.0")
        served.publish("otherlib", "1.0")
        served.publish("webapp", "1.0", ["wirelib>=1.0"])
        served.publish("devtool", "1.0")
        yield served


def spec(index: PackageIndex, *requirements: str) -> str:
    return "".join(f"{line}\n" for line in (f"--index-url {index.url}", *requirements))


@pytest.fixture
def bot(fake: FakeGitHub, advisory_service: AdvisoryService, tmp_path: Path) -> Bot:
    """The App, asking the local advisory service and (as it does by default) the indexes."""
    return Bot(
        fake,
        tmp_path / "cache",
        advisory_service="pypi",
        advisory_url=advisory_service.url,
        advisory_cache_dir=tmp_path / "advisory-cache",
        upstream_lookups=True,
    )


def locked(fake: FakeGitHub, path: str, ref: str | None = None) -> dict[str, str | None]:
    lock = parse_any_lock(fake.read_file(REPO, path, ref=ref), path)
    return {r.name: r.version for r in lock.requirements}


def open_pulls(fake: FakeGitHub, head: str) -> list[PullRequest]:
    return [p for p in fake.pulls(REPO, state="open") if p.head == head]


def locked_repo(
    bot: Bot,
    index: PackageIndex,
    advisories: AdvisoryService | None = None,
    serve_spec: tuple[str, ...] = (),
) -> Installation:
    """The repository with both locks on its default branch (wirelib 1.0 in each), made by a
    refresh pull request merged; then the fixes and a newer otherlib are published, and the
    advisory on wirelib 1.0 (with ``advisories``)."""
    fake = bot.fake
    installation = fake.create_installation("acme")
    fake.create_repo(
        REPO,
        files={
            ".github/lockwarden.yml": CONFIG,
            "requirements/serve.in": spec(index, "webapp", "otherlib", *serve_spec),
            "requirements/dev.in": spec(index, "webapp", "devtool"),
        },
        installation=installation,
    )
    first = bot.runner.run(job(installation, "refresh", REPO))
    assert first.action == "opened", first
    assert first.pull_number is not None
    fake.merge_pull(REPO, first.pull_number, method="squash")
    for version in ("1.1", "1.2", "1.3"):
        index.publish("wirelib", version)
    index.publish("otherlib", "1.1")
    if advisories is not None:
        advisories.publish("wirelib", "1.0", [ADVISORY])
    return installation


def test_the_security_pull_request_moves_only_the_affected_package_to_the_lowest_fix(
    fake: FakeGitHub, index: PackageIndex, advisory_service: AdvisoryService, bot: Bot
) -> None:
    installation = locked_repo(bot, index, advisory_service)
    before = {p: locked(fake, p) for p in ("requirements/serve.txt", "requirements/dev.txt")}

    outcome = bot.runner.run(job(installation, "security", REPO, reason="test"))

    assert outcome.kind == "security"
    assert outcome.action == "opened", outcome
    assert outcome.pull_number is not None
    [pull] = open_pulls(fake, SECURITY_BRANCH)
    assert pull.number == outcome.pull_number
    assert SECURITY_LABEL in pull.labels
    assert pull.title == "Security fixes: wirelib 1.1"
    # wirelib 1.0 -> 1.1 (not 1.3, not the newest) in both locks; nothing else moves
    for path, old in before.items():
        new = locked(fake, path, ref=SECURITY_BRANCH)
        assert new == {**old, "wirelib": "1.1"}, path
    assert before["requirements/serve.txt"]["otherlib"] == "1.0"
    body = pull.body or ""
    assert "### Security fixes" in body
    assert (
        "- [`GHSA-w1re-l1b0-0001`](https://osv.dev/vulnerability/GHSA-w1re-l1b0-0001) "
        "(`CVE-2099-7001`): `wirelib` `1.0` → `1.1` (serve, dev)"
    ) in body
    # the fix is younger than min_release_age (3d): taken anyway, and the body says so
    assert "### Release-age quarantine passed" in body
    assert "wirelib 1.1 was uploaded" in body
    assert "### Not fixed" not in body

    # a second run updates the same pull request: no second one, nothing new pushed
    pushes = len(fake.pushes)
    again = bot.runner.run(job(installation, "security", REPO))

    assert (again.action, again.pull_number) == ("updated", pull.number)
    assert [p.number for p in open_pulls(fake, SECURITY_BRANCH)] == [pull.number]
    assert len(fake.pushes) == pushes
    assert fake.pull(REPO, pull.number).labels.count(SECURITY_LABEL) == 1


def test_a_fix_the_spec_rules_out_opens_no_pull_request_and_names_the_line(
    fake: FakeGitHub, index: PackageIndex, advisory_service: AdvisoryService, bot: Bot
) -> None:
    installation = locked_repo(bot, index, advisory_service, serve_spec=("wirelib<1.1",))
    branches = set(fake.branches(REPO))

    outcome = bot.runner.run(job(installation, "security", REPO))

    assert outcome.action == "unchanged"
    assert outcome.note is not None
    assert "`wirelib<1.1` (`requirements/serve.in:4`)" in outcome.note
    assert "GHSA-w1re-l1b0-0001" in outcome.note
    assert open_pulls(fake, SECURITY_BRANCH) == []
    assert set(fake.branches(REPO)) == branches  # nothing pushed


def test_an_open_security_pull_request_is_closed_with_a_comment_when_nothing_is_left(
    fake: FakeGitHub, index: PackageIndex, advisory_service: AdvisoryService, bot: Bot
) -> None:
    installation = locked_repo(bot, index, advisory_service)
    opened = bot.runner.run(job(installation, "security", REPO))
    assert opened.pull_number is not None
    advisory_service.publish("wirelib", "1.0", [])  # withdrawn upstream

    outcome = bot.runner.run(job(installation, "security", REPO))

    assert (outcome.action, outcome.pull_number) == ("closed", opened.pull_number)
    assert fake.pull(REPO, opened.pull_number).state == "closed"
    [comment] = fake.comments(REPO, opened.pull_number)
    assert comment.body.startswith("Closing: nothing is left for this pull request to fix.")
    assert "has a fixed version the specs allow" in comment.body
    assert SECURITY_BRANCH not in fake.branches(REPO)


def test_a_refresh_that_finds_a_fixable_advisory_queues_one_security_job(
    fake: FakeGitHub, index: PackageIndex, advisory_service: AdvisoryService, bot: Bot
) -> None:
    installation = locked_repo(bot, index, advisory_service)
    queue = InMemoryQueue()
    app = GitHubApp(app_credentials(bot.settings))
    runner = JobRunner(app, bot.settings, git_base_url=fake.git_url, queue=queue)
    fake.push_files(REPO, {"requirements/dev.in": spec(index, "webapp", "devtool", "otherlib")})

    first = runner.run(job(installation, "refresh", REPO))
    second = runner.run(job(installation, "refresh", REPO))

    assert (first.kind, second.kind) == ("refresh", "refresh")
    assert open_pulls(fake, REFRESH_BRANCH)
    queued = [q.request for q in queue.jobs]
    assert [(r.kind, r.repo) for r in queued] == [("security", REPO)]  # the second joined
    assert queued[0].payload["packages"] == ["wirelib"]
    assert queue.pop() is not None
    assert queue.pop() is None


def test_without_an_advisory_the_security_job_opens_nothing(
    fake: FakeGitHub, index: PackageIndex, advisory_service: AdvisoryService, bot: Bot
) -> None:
    """Without any advisory there is nothing to open: the job says so and calls no PR API."""
    installation = locked_repo(bot, index)
    posts = len(fake.requests_to("POST", r"/repos/acme/svc/pulls$"))

    outcome = bot.runner.run(job(installation, "security", REPO))

    assert isinstance(outcome, JobOutcome)
    assert outcome.action == "unchanged"
    assert len(fake.requests_to("POST", r"/repos/acme/svc/pulls$")) == posts
    assert open_pulls(fake, SECURITY_BRANCH) == []
