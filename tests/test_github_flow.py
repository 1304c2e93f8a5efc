"""End to end against the fake GitHub: install -> onboarding PR -> push touching a spec ->
refresh PR -> re-run updates the same PR -> merged -> branch deleted -> known-good recorded."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.errors import LockwardenError
from bot.github.client import GitHubApp
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner
from bot.ledger import read_ledger
from bot.settings import app_credentials
from tests.support.fake_github import FakeGitHub, PullRequest
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex

pytestmark = pytest.mark.slow

REPO = "acme/svc"


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    for version in ("1.0.0", "1.1.0"):
        package_index.publish("beta", version)
    package_index.publish("gamma", "1.0.0")
    return package_index


def only_open_pull(fake: FakeGitHub, head: str) -> PullRequest:
    found = [p for p in fake.pulls(REPO, state="open") if p.head == head]
    assert len(found) == 1, [(p.number, p.head) for p in fake.pulls(REPO)]
    return found[0]


SERVE_CONFIG = "environments:\n  - name: serve\n    spec: requirements/serve.in\n"


def spec(index: PackageIndex, *requirements: str) -> str:
    return "".join(f"{line}\n" for line in (f"--index-url {index.url}", *requirements))


def test_install_onboard_refresh_rerun_merge_cleanup(
    fake: FakeGitHub, index: PackageIndex, tmp_path: Path
) -> None:
    installation = fake.create_installation("acme")
    fake.create_repo(
        REPO,
        files={"requirements/serve.in": spec(index, "beta<2"), "app.py": "print('hi')\n"},
        installation=installation,
    )
    bot = Bot(fake, tmp_path / "cache")

    # install -> onboarding PR proposing a config found by discovery
    jobs = bot.deliver(
        "installation", fake.payload("installation", "created", installation=installation)
    )
    assert [j.kind for j in jobs] == ["onboard"]
    bot.run_all(jobs)
    onboarding = only_open_pull(fake, "lockwarden/onboarding")
    config_text = fake.read_file(REPO, ".github/lockwarden.yml", ref="lockwarden/onboarding")
    assert "requirements/serve.in" in config_text
    assert "serve" in (onboarding.body or "")
    # merged: the spec has no lock yet, and only a config makes it an environment
    fake.merge_pull(REPO, onboarding.number, method="squash")

    # a person edits the spec on the default branch -> refresh PR with the new lock
    fake.push_files(REPO, {"requirements/serve.in": spec(index, "beta<2", "gamma")})
    jobs = bot.deliver("push", fake.payload("push", repo=REPO))
    assert [j.kind for j in jobs] == ["refresh"]
    bot.run_all(jobs)
    pull = only_open_pull(fake, "lockwarden/refresh")
    lock = fake.read_file(REPO, "requirements/serve.txt", ref="lockwarden/refresh")
    assert "beta==1.1.0" in lock
    assert "gamma==1.0.0" in lock
    assert "### Rollback" in (pull.body or "")
    assert "<!-- lockwarden:pr -->" in (pull.body or "")
    head = fake.log(REPO, "lockwarden/refresh")[0]
    assert head.author.name == "lockwarden[bot]"
    assert "Lockwarden-Env" in head.trailers
    checks = fake.check_runs(REPO, head_sha=head.sha, name="lockwarden")
    assert [c.conclusion for c in checks] == ["success"]
    assert "dependencies" in fake.pull(REPO, pull.number).labels

    # the same job again (a redelivery, a retry): the same PR is updated, nothing duplicated
    pushes = len(fake.pushes)
    bot.run_all(jobs)
    assert only_open_pull(fake, "lockwarden/refresh").number == pull.number
    assert fake.branches(REPO)["lockwarden/refresh"] == head.sha
    assert len(fake.pushes) == pushes  # nothing new to push
    assert len(fake.check_runs(REPO, name="lockwarden")) == 1

    # merged -> the bot branch is deleted and the lock set is known-good in the ledger
    merge_sha = fake.merge_pull(REPO, pull.number, method="squash")
    jobs = bot.deliver(
        "pull_request", fake.payload("pull_request", "closed", repo=REPO, number=pull.number)
    )
    assert [j.kind for j in jobs] == ["cleanup"]
    bot.run_all(jobs)
    assert "lockwarden/refresh" not in fake.branches(REPO)
    assert any("is now a known-good set" in c.body for c in fake.comments(REPO, pull.number))
    checkout = tmp_path / "checkout"
    subprocess.run(
        ["git", "clone", "-q", f"{fake.git_url}/{REPO}.git", str(checkout)],
        check=True,
        env={
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": _basic(fake, installation),
        },
    )
    entries = read_ledger(checkout)
    assert entries[0].commit == merge_sha
    assert entries[0].known_good
    assert [e.name for e in entries[0].environments] == ["serve"]


def _basic(fake: FakeGitHub, installation: object) -> str:
    import base64

    token = fake.issue_token(installation).token  # type: ignore[arg-type]
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


@pytest.fixture
def setup(fake: FakeGitHub, index: PackageIndex, tmp_path: Path) -> tuple[Bot, object]:
    installation = fake.create_installation("acme")
    fake.create_repo(
        REPO,
        files={
            # configured: discovery proposes no spec that has no lock yet
            ".github/lockwarden.yml": SERVE_CONFIG,
            "requirements/serve.in": spec(index, "beta<2"),
        },
        installation=installation,
    )
    return Bot(fake, tmp_path / "cache"), installation


def refresh_job(bot: Bot) -> list[JobRequest]:
    return bot.deliver("push", bot.fake.payload("push", repo=REPO))


def test_server_errors_and_secondary_rate_limits_are_retried_and_one_pr_results(
    setup: tuple[Bot, object], fake: FakeGitHub
) -> None:
    bot, _ = setup
    fake.fail_next("POST", r"/repos/acme/svc/pulls$", status=502)
    fake.fail_next(
        "POST",
        r"/repos/acme/svc/check-runs$",
        status=403,
        headers={"retry-after": "1"},
        body={"message": "You have exceeded a secondary rate limit."},
    )

    jobs = refresh_job(bot)
    bot.run_all(jobs)
    bot.run_all(jobs)  # and a retry of the whole job

    pull = only_open_pull(fake, "lockwarden/refresh")
    assert pull.number
    assert len(fake.requests_to("POST", r"/repos/acme/svc/pulls$")) == 2  # the 502, then once
    assert len(fake.check_runs(REPO, name="lockwarden")) == 1  # the re-run kept the commit


def test_tokens_are_renewed_during_a_job(setup: tuple[Bot, object], fake: FakeGitHub) -> None:
    bot, _ = setup
    fake.token_lifetime_s = 90  # inside the renewal margin: every git operation renews

    bot.run_all(refresh_job(bot))

    assert only_open_pull(fake, "lockwarden/refresh")
    minted = fake.requests_to("POST", r"/app/installations/\d+/access_tokens$")
    assert len(minted) >= 3  # clone, fetch and push each asked for a fresh token


def test_a_branch_a_person_pushed_to_is_not_rewritten(
    setup: tuple[Bot, object], fake: FakeGitHub, index: PackageIndex
) -> None:
    bot, _ = setup
    bot.run_all(refresh_job(bot))
    pull = only_open_pull(fake, "lockwarden/refresh")
    human = fake.push_files(
        REPO, {"NOTES.md": "mine\n"}, branch="lockwarden/refresh", author=("Alice", "a@x.org")
    )
    fake.push_files(REPO, {"requirements/serve.in": spec(index, "beta<2", "gamma")})

    outcome = bot.runner.run(refresh_job(bot)[0])

    assert outcome.action == "blocked"
    assert fake.branches(REPO)["lockwarden/refresh"] == human
    assert any("stopped updating it" in c.body for c in fake.comments(REPO, pull.number))


def test_resolver_failure_is_reported_on_the_check_run(
    setup: tuple[Bot, object], fake: FakeGitHub, index: PackageIndex
) -> None:
    bot, _ = setup
    fake.push_files(REPO, {"requirements/serve.in": spec(index, "no-such-package")})

    outcome = bot.runner.run(refresh_job(bot)[0])

    assert outcome.action == "failed"
    head = fake.log(REPO)[0].sha
    [check] = fake.check_runs(REPO, head_sha=head, name="lockwarden")
    assert check.conclusion == "failure"
    assert "serve" in (check.title or "")


def test_clone_failure_is_reported_and_raised(setup: tuple[Bot, object], fake: FakeGitHub) -> None:
    bot, _ = setup
    bot.runner = JobRunner(
        GitHubApp(app_credentials(bot.settings)),
        bot.settings,
        git_base_url=fake.git_url + "/no-such-prefix",
    )

    with pytest.raises(LockwardenError):
        bot.runner.run(refresh_job(bot)[0])

    head = fake.log(REPO)[0].sha
    [check] = fake.check_runs(REPO, head_sha=head, name="lockwarden")
    assert check.conclusion == "failure"
