"""The App's jobs against the fake GitHub: refresh (with the pipeline's result made by hand),
onboarding, cleanup after a bot pull request is closed, what is skipped, and the failure report
of a job that could not start."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any, Literal

import pytest
import yaml
from pydantic import SecretStr

from bot.config import LoadedConfig, RepoConfig
from bot.errors import LockwardenError
from bot.github.client import AppCredentials, GitHubApp, TokenScope
from bot.github.scopes import CHECK_RUN_ONLY
from bot.images import Finding
from bot.jobs import runner as job_runner
from bot.jobs.branches import ONBOARDING_BRANCH, REFRESH_BRANCH, JobOutcome
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner, _git_base, onboarding_config, report_job_failure
from bot.ledger import LockRecord, commit_message, trailers
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.pipeline.checkout import Workspace
from bot.report import messages
from bot.results import CompileStageResult, ImageResult, LockResult, RunResult, TestResult
from bot.settings import Settings
from bot.worker import RefreshOptions
from tests.support.fake_github import FakeGitHub, Installation
from tests.support.fake_github._server import Connection, all_closed

CONFIG = """\
environments:
  - name: serve
    spec: requirements/serve.in
    lock: requirements/serve.txt
"""
SERVE_LOCK = "numpy==2.0.0\n"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake(module_fake: FakeGitHub) -> FakeGitHub:
    """The module's tests share one fake GitHub, each in repositories of its own."""
    return module_fake


@pytest.fixture(scope="module")
def installation(fake: FakeGitHub) -> Installation:
    return fake.create_installation("acme")


@pytest.fixture(scope="module")
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))


@pytest.fixture(scope="module")
def settings(fake: FakeGitHub, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        app_id=fake.app_id,
        private_key=SecretStr(fake.private_key_pem),
        github_api_url=fake.api_url,
        cache_dir=tmp_path_factory.mktemp("cache"),
        builder="none",
    )


@pytest.fixture(scope="module")
def runner(fake: FakeGitHub, app: GitHubApp, settings: Settings) -> JobRunner:
    return JobRunner(app, settings, git_base_url=fake.git_url)


def new_repo(fake: FakeGitHub, installation: Installation, files: dict[str, str]) -> str:
    name = f"acme/svc-{next(_names)}"
    fake.create_repo(name, files=files, installation=installation)
    return name


def job(installation: Installation, kind: str, repo: str, **payload: Any) -> JobRequest:
    return JobRequest(
        kind=kind,  # type: ignore[arg-type]
        repo=repo,
        installation_id=installation.id,
        delivery_id=f"delivery-{next(_names)}",
        payload=payload,
    )


def requests_for(fake: FakeGitHub, repo: str) -> list[str]:
    """The REST and git requests made about ``repo``."""
    return [
        f"{r.method} {r.path}" for r in fake.requests_to("*", rf"/{re.escape(repo)}(\.git)?(/|$)")
    ]


# -- dispatch --------------------------------------------------------------------------------


def test_an_unknown_kind_is_skipped_without_calling_github(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    before = len(fake.requests)

    outcome = runner.run(job(installation, "rollback", "acme/anything"))

    assert outcome == JobOutcome(
        "rollback", "acme/anything", "skipped", note="no handler for rollback"
    )
    assert len(fake.requests) == before


# -- onboarding ------------------------------------------------------------------------------


def test_onboarding_proposes_a_config_and_a_rerun_updates_the_same_pull_request(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(
        fake,
        installation,
        {"requirements/serve.in": "numpy\n", "requirements/dev.in": "pytest\n", "app.py": ""},
    )

    first = runner.run(job(installation, "onboard", repo))

    assert first.kind == "onboard"
    assert first.action == "opened"
    assert first.pull_number is not None
    pull = fake.pull(repo, first.pull_number)
    assert (pull.head, pull.base, pull.title) == (ONBOARDING_BRANCH, "main", "Configure Lockwarden")
    config_text = fake.read_file(repo, ".github/lockwarden.yml", ref=ONBOARDING_BRANCH)
    assert config_text.startswith("# Lockwarden configuration, proposed from")
    proposed = yaml.safe_load(config_text)
    assert sorted(env["spec"] for env in proposed["environments"]) == [
        "requirements/dev.in",
        "requirements/serve.in",
    ]
    body = pull.body or ""
    assert "requirements/serve.in" in body
    assert config_text in body
    head = fake.log(repo, ONBOARDING_BRANCH)[0]
    assert head.sha[:12] in body
    assert head.author.name == "lockwarden[bot]"
    assert head.message.startswith("Configure Lockwarden")
    with pytest.raises(FileNotFoundError):
        fake.read_file(repo, ".github/lockwarden.yml")  # nothing on main until merged

    second = runner.run(job(installation, "onboard", repo))

    assert second.action == "updated"
    assert second.pull_number == first.pull_number
    assert [p.number for p in fake.pulls(repo)] == [first.pull_number]
    assert fake.pull(repo, first.pull_number).state == "open"
    assert fake.read_file(repo, ".github/lockwarden.yml", ref=ONBOARDING_BRANCH) == config_text
    new_head = fake.log(repo, ONBOARDING_BRANCH)[0]
    assert new_head.sha[:12] in (fake.pull(repo, first.pull_number).body or "")


def test_onboarding_does_not_overwrite_a_persons_edit_of_the_proposal(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"requirements/serve.in": "numpy\n"})
    first = runner.run(job(installation, "onboard", repo))
    edited = fake.push_files(
        repo,
        {".github/lockwarden.yml": "environments: []\n"},
        branch=ONBOARDING_BRANCH,
        author=("Alice", "alice@example.com"),
    )

    second = runner.run(job(installation, "onboard", repo))

    assert second.action == "blocked"
    assert "stopped updating it" in (second.note or "")
    assert fake.branches(repo)[ONBOARDING_BRANCH] == edited
    assert [p.number for p in fake.pulls(repo)] == [first.pull_number]


@pytest.mark.parametrize(
    ("files", "note"),
    [
        pytest.param(
            {".github/lockwarden.yml": CONFIG, "requirements/serve.in": "numpy\n"},
            "already configured",
            id="already-configured",
        ),
        pytest.param(
            {"README.md": "no Python here\n"}, "no environments found", id="no-environments"
        ),
    ],
)
def test_onboarding_is_skipped(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    files: dict[str, str],
    note: str,
) -> None:
    repo = new_repo(fake, installation, files)

    outcome = runner.run(job(installation, "onboard", repo))

    assert outcome == JobOutcome("onboard", repo, "skipped", note=note)
    assert fake.pulls(repo) == []
    assert list(fake.branches(repo)) == ["main"]


def test_onboarding_config_has_a_header_and_keeps_the_key_order() -> None:
    data = {"environments": [{"name": "serve", "spec": "requirements/serve.in"}], "labels": ["x"]}

    text = onboarding_config(data)

    lines = text.splitlines()
    assert lines[0].startswith("# Lockwarden configuration")
    assert "lockwarden schema" in lines[1]
    assert lines[2] == "environments:"
    assert yaml.safe_load(text) == data
    assert list(yaml.safe_load(text)) == ["environments", "labels"]


# -- cleanup ---------------------------------------------------------------------------------


def bot_pull(
    fake: FakeGitHub, repo: str, branch: str = REFRESH_BRANCH, *, tests: str | None = None
) -> int:
    """A pull request from ``branch`` whose commit carries the ledger of a serve lock with
    ``tests`` as its outcome (no ledger when None)."""
    record = LockRecord("serve", "requirements/serve.txt", SERVE_LOCK, tests=tests)
    message = (
        commit_message("Update locks: serve", "", trailers("minimal", [record]))
        if tests
        else "Update locks: serve"
    )
    fake.push_files(repo, {"requirements/serve.txt": SERVE_LOCK}, branch=branch, message=message)
    return fake.open_pull(
        repo, head=branch, title="Update locks: serve", user="lockwarden[bot]"
    ).number


def cleanup_job(
    fake: FakeGitHub, installation: Installation, repo: str, number: int, **payload: Any
) -> JobRequest:
    """What the receiver queues when pull request ``number`` is closed."""
    pull = fake.pull(repo, number)
    fields: dict[str, Any] = {
        "branch": pull.head,
        "number": number,
        "merged": pull.merged,
        "head_sha": pull.head_sha,
        "merge_commit_sha": pull.merge_commit_sha,
    }
    return job(installation, "cleanup", repo, **{**fields, **payload})


def test_cleanup_of_a_branch_the_bot_does_not_own_is_skipped(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    number = bot_pull(fake, repo, branch="feature/x")

    outcome = runner.run(
        job(installation, "cleanup", repo, branch="feature/x", number=number, merged=True)
    )

    assert outcome == JobOutcome("cleanup", repo, "skipped", note="not a bot branch: feature/x")
    assert "feature/x" in fake.branches(repo)
    assert requests_for(fake, repo) == []


def test_cleanup_after_a_merge_deletes_the_branch_and_comments_once(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    number = bot_pull(fake, repo, tests="failed")
    merge_sha = fake.merge_pull(repo, number, method="squash")
    request = cleanup_job(fake, installation, repo, number)

    first = runner.run(request)
    second = runner.run(request)  # a redelivery, or a retry of the job

    assert first == JobOutcome("cleanup", repo, "deleted", number)
    assert second == JobOutcome("cleanup", repo, "already gone", number)
    assert REFRESH_BRANCH not in fake.branches(repo)
    [comment] = fake.comments(repo, number)
    assert comment.body == (
        messages.NOT_KNOWN_GOOD.format(sha=merge_sha[:12]) + "\n\n<!-- lockwarden:known-good -->\n"
    )
    assert comment.edits == []  # the second run found it unchanged


@pytest.mark.parametrize(
    ("tests", "method", "payload", "message", "sha"),
    [
        # ``sha`` None: the merge commit's short SHA.
        pytest.param("passed", "squash", {}, messages.KNOWN_GOOD, None, id="passing-tests"),
        pytest.param(
            "passed", "merge", {"head_sha": None}, messages.NOT_KNOWN_GOOD, None, id="no-head-sha"
        ),
        pytest.param(
            "passed",
            "merge",
            {"head_sha": "f" * 40},
            messages.NOT_KNOWN_GOOD,
            None,
            id="unknown-head-sha",
        ),
        pytest.param(
            None,
            "merge",
            {"merge_commit_sha": None},
            messages.NOT_KNOWN_GOOD,
            "the merge commit",
            id="no-ledger",
        ),
    ],
)
def test_cleanup_after_a_merge_records_known_good_only_with_passing_tests_on_record(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    tests: str | None,
    method: Literal["merge", "squash"],
    payload: dict[str, Any],
    message: str,
    sha: str | None,
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    number = bot_pull(fake, repo, tests=tests)
    merge_sha = fake.merge_pull(repo, number, method=method)

    outcome = runner.run(cleanup_job(fake, installation, repo, number, **payload))

    assert outcome == JobOutcome("cleanup", repo, "deleted", number)
    [comment] = fake.comments(repo, number)
    assert comment.body.startswith(message.format(sha=sha or merge_sha[:12]))


def test_cleanup_of_a_merged_onboarding_pull_request_records_no_lock_set(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    number = bot_pull(fake, repo, branch=ONBOARDING_BRANCH)
    fake.merge_pull(repo, number)

    outcome = runner.run(cleanup_job(fake, installation, repo, number))

    assert outcome == JobOutcome("cleanup", repo, "deleted", number)
    assert ONBOARDING_BRANCH not in fake.branches(repo)
    assert fake.comments(repo, number) == []


def test_cleanup_of_an_unmerged_pull_request_deletes_the_branch_only(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    number = bot_pull(fake, repo, tests="passed")
    fake.close_pull(repo, number)

    outcome = runner.run(cleanup_job(fake, installation, repo, number))

    assert outcome == JobOutcome("cleanup", repo, "deleted", number)
    assert REFRESH_BRANCH not in fake.branches(repo)
    assert fake.comments(repo, number) == []


# -- refresh (the pipeline replaced by a result made by hand) --------------------------------

NUMPY_UP = PackageChange("numpy", "1.26.4", "2.0.0", "upgraded", "major", direct=True)


def lock_result(status: str = "changed", **extra: Any) -> LockResult:
    return LockResult(
        name="serve",
        spec="requirements/serve.in",
        lock="requirements/serve.txt",
        backend="uv",
        status=status,  # type: ignore[arg-type]
        diff=LockDiff((NUMPY_UP,) if status == "changed" else ()),
        new_text=SERVE_LOCK if status == "changed" else None,
        **extra,
    )


def pipeline_result(
    workspace: Workspace,
    lock: LockResult,
    *,
    tests: tuple[TestResult, ...] = (),
    images: tuple[ImageResult, ...] = (),
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass
) -> RunResult:
    return RunResult(
        repo=workspace.repo,
        config=LoadedConfig(RepoConfig(labels=("dependencies", "ml")), source="discovery"),
        mode=mode,
        compiled=CompileStageResult((lock,), (), (lock.name,)),
        images=images,
        tests=tests,
    )


class Pipeline:
    """Stands in for ``bot.worker.refresh``: returns ``make(workspace)``, records the options."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.options: list[RefreshOptions] = []
        self.make: Callable[[Workspace], RunResult] = lambda ws: pipeline_result(ws, lock_result())
        monkeypatch.setattr(job_runner, "refresh", self._refresh)

    def _refresh(
        self,
        workspace: Workspace,
        options: RefreshOptions,
        settings: Settings,
        *,
        sandbox: object = None,
        progress: object = None,
    ) -> RunResult:
        assert (workspace.root / "requirements/serve.in").is_file()  # run on the clone
        self.options.append(options)
        return self.make(workspace)


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return Pipeline(monkeypatch)


@pytest.fixture
def spec_repo(fake: FakeGitHub, installation: Installation) -> str:
    # Configured: discovery would not propose a spec that has no lock yet.
    files = {".github/lockwarden.yml": CONFIG, "requirements/serve.in": "numpy\n"}
    return new_repo(fake, installation, files)


def test_refresh_opens_a_pull_request_with_the_locks_and_a_check_run(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    repo = spec_repo
    findings = (
        Finding("LW001", "error", "Dockerfile", 3, "the lock is not installed"),
        Finding("DL3008", "warning", "Dockerfile", 0, "pin apt packages", source="hadolint"),
        Finding("LW006", "info", "Dockerfile", 5, "unpinned pip"),
    )
    pipeline.make = lambda ws: pipeline_result(
        ws,
        lock_result(),
        images=(ImageResult(name="serve", status="built", findings=findings),),
        tests=(TestResult("serve", "passed"),),
    )
    base = fake.branches(repo)["main"]

    outcome = runner.run(job(installation, "refresh", repo))

    assert (outcome.kind, outcome.action) == ("refresh", "opened")
    assert outcome.pull_number is not None
    [options] = pipeline.options
    assert options == RefreshOptions(write=False, verify_reproducible=None)
    assert fake.read_file(repo, "requirements/serve.txt", ref=REFRESH_BRANCH) == SERVE_LOCK
    head = fake.log(repo, REFRESH_BRANCH)[0]
    assert head.author.name == "lockwarden[bot]"
    assert head.message.startswith("Update locks: serve\n")
    assert "Lockwarden-Tests: serve=passed" in head.message
    pull = fake.pull(repo, outcome.pull_number)
    assert (pull.title, pull.head, pull.base, pull.draft) == (
        "Update locks: serve",
        REFRESH_BRANCH,
        "main",
        False,
    )
    assert pull.labels == ["dependencies", "ml"]
    body = pull.body or ""
    assert f"`main` at `{base}`" in body
    assert f"git revert {head.sha}" in body
    assert body.endswith("<!-- lockwarden:pr -->")
    [check] = fake.check_runs(repo, head_sha=head.sha, name="lockwarden")
    assert check.conclusion == "success"
    assert [(a["annotation_level"], a["start_line"], a["title"]) for a in check.annotations] == [
        ("failure", 3, "LW001"),
        ("warning", 1, "DL3008"),
        ("notice", 5, "LW006"),
    ]


def rollback_notes(
    fake: FakeGitHub, runner: JobRunner, installation: Installation, repo: str
) -> str:
    """The Rollback section of the pull request a refresh job of ``repo`` opens."""
    outcome = runner.run(job(installation, "refresh", repo))
    assert outcome.pull_number is not None
    body = fake.pull(repo, outcome.pull_number).body or ""
    return body[body.index(messages.ROLLBACK_TITLE) :]


def test_the_rollback_section_names_the_newest_known_good_set_of_the_default_branch(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    passed = LockRecord("serve", "requirements/serve.txt", "numpy==1.26.4\n", tests="passed")
    failed = LockRecord("serve", "requirements/serve.txt", "numpy==1.26.3\n", tests="failed")
    shas = [
        fake.push_files(
            spec_repo,
            {record.lock: record.text},
            message=commit_message("Update locks: serve", "", trailers("full", [record])),
        )
        for record in (passed, failed)  # the newest entry's tests failed: it is not known-good
    ]

    rollback = rollback_notes(fake, runner, installation, spec_repo)

    assert "`/lockwarden rollback --to known-good`" in rollback
    assert re.search(rf"known-good set {shas[0][:12]} of \d{{4}}-\d\d-\d\d,", rollback)


def test_without_a_known_good_set_the_rollback_section_says_so(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    base = fake.branches(spec_repo)["main"]

    rollback = rollback_notes(fake, runner, installation, spec_repo)

    assert "There is no known-good set" in rollback
    assert f"`/lockwarden rollback --to {base}`" in rollback


def test_a_rerun_with_the_same_result_updates_the_pull_request_and_pushes_nothing(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    repo = spec_repo
    first = runner.run(job(installation, "refresh", repo))
    head = fake.branches(repo)[REFRESH_BRANCH]
    pushes = len(fake.pushes)

    second = runner.run(job(installation, "refresh", repo))

    assert (first.action, second.action) == ("opened", "updated")
    assert second.pull_number == first.pull_number
    assert fake.branches(repo)[REFRESH_BRANCH] == head
    assert len(fake.pushes) == pushes
    assert len(fake.check_runs(repo, name="lockwarden")) == 1
    assert len(fake.pulls(repo)) == 1


def test_a_full_refresh_job_asks_the_pipeline_for_upgrades_and_a_reproducibility_check(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    pipeline.make = lambda ws: pipeline_result(ws, lock_result(), mode=CompileMode("full"))

    outcome = runner.run(
        job(installation, "refresh", spec_repo, mode="full", environments=["serve"])
    )

    [options] = pipeline.options
    assert options.upgrade
    assert options.verify_reproducible is True
    assert options.environments == ("serve",)
    assert not options.write
    assert outcome.pull_number is not None
    assert fake.pull(spec_repo, outcome.pull_number).title == "Refresh locks: serve"


def test_a_targeted_refresh_job_passes_its_packages(
    installation: Installation, runner: JobRunner, pipeline: Pipeline, spec_repo: str
) -> None:
    runner.run(job(installation, "refresh", spec_repo, mode="targeted", packages=["numpy==2.0.0"]))

    [options] = pipeline.options
    assert options.upgrade_packages == ("numpy==2.0.0",)
    assert not options.upgrade
    assert options.verify_reproducible is None


def test_failing_tests_open_a_draft_with_a_failed_check(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    pipeline.make = lambda ws: pipeline_result(
        ws, lock_result(), tests=(TestResult("serve", "failed", log_tail="1 failed"),)
    )

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert outcome.action == "opened"
    assert outcome.pull_number is not None
    pull = fake.pull(spec_repo, outcome.pull_number)
    assert pull.draft
    assert (pull.body or "").startswith("> [!CAUTION]")
    [check] = fake.check_runs(spec_repo, name="lockwarden")
    assert (check.conclusion, check.title) == ("failure", "Failed: serve")


def test_nothing_left_to_change_closes_the_open_pull_request(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    opened = runner.run(job(installation, "refresh", spec_repo))
    pipeline.make = lambda ws: pipeline_result(ws, lock_result("unchanged"))

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert outcome == JobOutcome("refresh", spec_repo, "closed", opened.pull_number)
    assert opened.pull_number is not None
    assert fake.pull(spec_repo, opened.pull_number).state == "closed"
    [comment] = fake.comments(spec_repo, opened.pull_number)
    assert comment.body == messages.PR_CLOSED_EMPTY
    assert REFRESH_BRANCH not in fake.branches(spec_repo)


def test_nothing_to_change_and_no_pull_request_is_unchanged(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    pipeline.make = lambda ws: pipeline_result(ws, lock_result("unchanged"))

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert outcome == JobOutcome("refresh", spec_repo, "unchanged")
    assert fake.pulls(spec_repo) == []
    assert fake.check_runs(spec_repo) == []
    assert list(fake.branches(spec_repo)) == ["main"]


def test_a_failed_compile_with_nothing_to_propose_fails_the_check_on_the_default_branch(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    pipeline.make = lambda ws: pipeline_result(
        ws, lock_result("failed", error="no release of ghost", tool_output="ERROR: ghost")
    )

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert (outcome.action, outcome.pull_number, outcome.note) == ("failed", None, "Failed: serve")
    [check] = fake.check_runs(spec_repo, head_sha=fake.branches(spec_repo)["main"])
    assert (check.name, check.conclusion) == ("lockwarden", "failure")
    assert "no release of ghost" in (check.summary or "")
    assert fake.pulls(spec_repo) == []


def test_a_branch_a_person_pushed_to_is_left_alone_and_they_are_told_once(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    opened = runner.run(job(installation, "refresh", spec_repo))
    assert opened.pull_number is not None
    human = fake.push_files(
        spec_repo, {"NOTES.md": "mine\n"}, branch=REFRESH_BRANCH, author=("Alice", "a@x.org")
    )

    first = runner.run(job(installation, "refresh", spec_repo))
    second = runner.run(job(installation, "refresh", spec_repo))

    assert (first.action, second.action) == ("blocked", "blocked")
    assert first.pull_number == opened.pull_number
    assert first.note == messages.PR_HUMAN_PUSH.format(branch=f"`{REFRESH_BRANCH}`")
    assert fake.branches(spec_repo)[REFRESH_BRANCH] == human
    [comment] = fake.comments(spec_repo, opened.pull_number)
    assert "stopped updating it" in comment.body


def test_a_branch_a_person_made_without_a_pull_request_is_left_alone(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    human = fake.push_files(
        spec_repo, {"NOTES.md": "mine\n"}, branch=REFRESH_BRANCH, author=("Alice", "a@x.org")
    )

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert (outcome.action, outcome.pull_number) == ("blocked", None)
    assert fake.branches(spec_repo)[REFRESH_BRANCH] == human
    assert fake.pulls(spec_repo) == []


# -- connections -----------------------------------------------------------------------------


def job_connections(fake: FakeGitHub, seen: int, repo: str) -> list[Connection]:
    """The connections opened since ``seen`` that carried REST requests about ``repo``."""
    path = f"/api/v3/repos/{repo}/"
    return [
        c
        for c in fake.connections()[seen:]
        if any(r.split(" ")[1].startswith(path) for r in c.requests)
    ]


def test_a_refresh_job_sends_its_rest_requests_on_one_connection_closed_when_it_ends(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    pipeline: Pipeline,
    spec_repo: str,
) -> None:
    seen = len(fake.connections())
    before = len(fake.requests_to("*", rf"^/api/v3/repos/{re.escape(spec_repo)}/"))

    outcome = runner.run(job(installation, "refresh", spec_repo))

    assert outcome.action == "opened"
    [connection] = job_connections(fake, seen, spec_repo)
    about_repo = fake.requests_to("*", rf"^/api/v3/repos/{re.escape(spec_repo)}/")[before:]
    assert len(about_repo) >= 4  # the pull request, its check run, the branch lookups
    assert len(connection.requests) == len(about_repo)
    assert all_closed([connection])


def test_a_failing_job_closes_its_connections(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, settings: Settings
) -> None:
    repo = new_repo(fake, installation, {"requirements/serve.in": "numpy\n"})
    broken = JobRunner(app, settings, git_base_url=fake.git_url + "/no-such-prefix")
    seen = len(fake.connections())

    with pytest.raises(LockwardenError):
        broken.run(job(installation, "refresh", repo))

    # The failure was reported on a check run, through the job's pool, then everything closed.
    [connection] = job_connections(fake, seen, repo)
    assert any("/check-runs" in r for r in connection.requests)
    assert all_closed([connection])


def test_outside_a_job_a_client_is_not_pooled(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    request = job(installation, "refresh", repo)

    with runner.job_clients() as pool:
        inside = runner.installation_client(request)
        assert runner.installation_client(request) is inside
        with runner.job_clients() as nested:
            assert nested is pool  # a job method called by another shares its pool
    outside = runner.installation_client(request)

    assert outside is not inside
    assert runner.installation_client(request) is not outside


# -- failures --------------------------------------------------------------------------------


def test_a_clone_failure_is_reported_on_the_default_branch_and_raised(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, settings: Settings
) -> None:
    repo = new_repo(fake, installation, {"requirements/serve.in": "numpy\n"})
    broken = JobRunner(app, settings, git_base_url=fake.git_url + "/no-such-prefix")

    with pytest.raises(LockwardenError):
        broken.run(job(installation, "refresh", repo))

    [check] = fake.check_runs(repo, head_sha=fake.branches(repo)["main"], name="lockwarden")
    assert (check.status, check.conclusion) == ("completed", "failure")
    assert check.title == messages.CHECK_CLONE_FAILED
    assert fake.pulls(repo) == []


def test_report_job_failure_puts_a_failed_check_run_on_the_default_branch(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    client = app.installation_client(TokenScope(installation.id, repo, CHECK_RUN_ONLY))

    report_job_failure(client, repo, "Lockwarden could not start", "the reason")

    [check] = fake.check_runs(repo, head_sha=fake.branches(repo)["main"])
    assert (check.name, check.conclusion) == ("lockwarden", "failure")
    assert (check.title, check.summary) == ("Lockwarden could not start", "the reason")


def test_report_job_failure_with_github_unreachable_does_not_raise(
    fake: FakeGitHub, installation: Installation, unreachable_index_url: str
) -> None:
    app = GitHubApp(
        AppCredentials(fake.app_id, fake.private_key_pem, unreachable_index_url + "/api/v3")
    )
    client = app.installation_client(TokenScope(installation.id, "acme/svc", CHECK_RUN_ONLY))

    report_job_failure(client, "acme/svc", "title", "detail")  # returns quietly


def test_report_job_failure_for_a_repository_github_does_not_show_does_not_raise(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    scope = TokenScope(installation.id, "acme/no-such-repo", CHECK_RUN_ONLY)
    client = app.installation_client(scope)
    before = len(fake.requests)

    report_job_failure(client, "acme/no-such-repo", "title", "detail")

    # GitHub refuses a token for a repository it does not show: nothing else is asked
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in fake.requests[before:]] == [
        ("access_tokens", 422)
    ]


@pytest.mark.parametrize(
    ("api_url", "git_base"),
    [
        pytest.param("https://api.github.com", "https://github.com", id="github.com"),
        pytest.param("https://api.github.com/", "https://github.com", id="github.com-slash"),
        pytest.param("https://ghe.example.com/api/v3", "https://ghe.example.com", id="ghes"),
        pytest.param("https://ghe.example.com/api/v3/", "https://ghe.example.com", id="ghes-slash"),
        pytest.param("http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080", id="ghes-port"),
    ],
)
def test_git_base_from_the_api_url(api_url: str, git_base: str) -> None:
    assert _git_base(api_url) == git_base
