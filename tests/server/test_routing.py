"""Every routing rule, table-driven, through the whole receiver: signed POST in, jobs out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.jobs.queue import InMemoryQueue
from bot.server import messages
from bot.server.app import build_router
from bot.server.push import is_relevant_path
from tests.server import client, make_app, post

REPO = {"id": 10, "full_name": "acme/ml", "default_branch": "main"}
INSTALLATION = {"id": 42}
ALICE = {"login": "alice", "type": "User"}
SELF = {"login": "lockwarden[bot]", "type": "Bot"}
SHA = "c" * 40


def push(
    files: list[str] | None = None,
    *,
    ref: str = "refs/heads/main",
    commits: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    commit = {"id": SHA, "added": [], "modified": files or [], "removed": []}
    payload: dict[str, Any] = {
        "ref": ref,
        "before": "a" * 40,
        "after": SHA,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [commit] if commits is None else commits,
        "head_commit": commit if commits is None else None,
        "repository": REPO,
        "installation": INSTALLATION,
        "sender": ALICE,
    }
    payload.update(extra)
    return payload


def readme_commits(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{i:040x}", "added": [], "modified": ["README.md"], "removed": []}
        for i in range(count)
    ]


def pull_closed(
    ref: str = "lockwarden/refresh-2024-06-01",
    *,
    head_repo: dict[str, Any] | None = REPO,
    merged: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": "closed",
        "number": 12,
        "pull_request": {
            "number": 12,
            "state": "closed",
            "merged": merged,
            "merged_at": "2024-06-01T10:00:00Z" if merged else None,
            "merge_commit_sha": "d" * 40,
            "head": {"ref": ref, "sha": SHA, "repo": head_repo},
            "base": {"ref": "main", "sha": "e" * 40, "repo": REPO},
        },
        "repository": REPO,
        "installation": INSTALLATION,
        "sender": ALICE,
    }
    payload.update(extra)
    return payload


def comment(
    body: str,
    *,
    action: str = "created",
    user: dict[str, Any] = ALICE,
    pull_request: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    issue: dict[str, Any] = {"number": 7, "title": "Refresh locks"}
    if pull_request:
        issue["pull_request"] = {}
    payload: dict[str, Any] = {
        "action": action,
        "issue": issue,
        "comment": {"id": 99, "body": body, "user": user, "author_association": "MEMBER"},
        "repository": REPO,
        "installation": INSTALLATION,
        "sender": user,
    }
    payload.update(extra)
    return payload


def check_run(
    name: str = "lockwarden",
    *,
    action: str = "rerequested",
    head_branch: str | None = "lockwarden/refresh",
    pull_requests: list[dict[str, Any]] | None = None,
    app_slug: str = "lockwarden",
) -> dict[str, Any]:
    return {
        "action": action,
        "check_run": {
            "id": 4,
            "name": name,
            "head_sha": SHA,
            "check_suite": {"head_branch": head_branch, "head_sha": SHA},
            "app": {"id": 1, "slug": app_slug},
            "pull_requests": pull_requests or [],
        },
        "repository": REPO,
        "installation": INSTALLATION,
        "sender": ALICE,
    }


def check_suite(
    *,
    action: str = "rerequested",
    head_branch: str | None = "lockwarden/refresh",
    app_slug: str | None = "lockwarden",
) -> dict[str, Any]:
    app: dict[str, Any] = {"id": 1} if app_slug is None else {"id": 1, "slug": app_slug}
    return {
        "action": action,
        "check_suite": {
            "id": 5,
            "head_branch": head_branch,
            "head_sha": SHA,
            "status": "completed",
            "conclusion": "failure",
            "app": app,
            "pull_requests": [],
        },
        "repository": REPO,
        "installation": INSTALLATION,
        "sender": ALICE,
    }


def without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


@dataclass(frozen=True)
class Case:
    id: str
    event: str
    payload: dict[str, Any]
    jobs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(kind, repo, a subset of the job's payload) for each job, in order."""
    reason: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


SUITE_RERUN = {"check_run_id": None, "trigger": "check_suite.rerequested"}
REFRESH_MAIN = ("refresh", "acme/ml", {"mode": "minimal", "branch": "main", "sha": SHA})

CASES = [
    # -- push --------------------------------------------------------------------------------
    Case("push-lock-on-default", "push", push(["requirements/serve.txt"]), jobs=[REFRESH_MAIN]),
    Case(
        "push-spec-removed",
        "push",
        push(commits=[{"id": SHA, "added": [], "modified": [], "removed": ["dev.in"]}]),
        jobs=[REFRESH_MAIN],
    ),
    Case("push-dockerfile", "push", push(["services/api/Dockerfile.serve"]), jobs=[REFRESH_MAIN]),
    Case("push-config", "push", push([".github/lockwarden.yml"]), jobs=[REFRESH_MAIN]),
    Case(
        "push-head-commit-only-relevant",
        "push",
        push(["README.md"]) | {"head_commit": {"id": SHA, "modified": ["uv.lock"]}},
        jobs=[REFRESH_MAIN],
    ),
    Case(
        "push-irrelevant",
        "push",
        push(["README.md", "src/app.py", "MANIFEST.in"]),
        reason=messages.PUSH_NO_RELEVANT_FILES,
    ),
    Case(
        "push-tag",
        "push",
        push(["requirements.txt"], ref="refs/tags/v1.0"),
        reason=messages.PUSH_TAG,
    ),
    Case(
        "push-deleted-branch",
        "push",
        push(ref="refs/heads/main", commits=[], deleted=True, after="0" * 40),
        reason=messages.PUSH_DELETED,
    ),
    Case(
        "push-other-branch",
        "push",
        push(["requirements.txt"], ref="refs/heads/feature"),
        reason="a push to refs/heads/feature, not to the default branch 'main'",
    ),
    Case(
        "push-not-a-branch",
        "push",
        push(["requirements.txt"], ref="refs/notes/commits"),
        reason="a push to refs/notes/commits, which is not a branch",
    ),
    Case(
        "push-by-the-app",
        "push",
        push(["requirements.txt"], sender=SELF),
        reason="a push by lockwarden[bot], Lockwarden itself",
    ),
    Case(
        "push-by-the-app-slug-case",
        "push",
        push(["requirements.txt"], sender={"login": "LockWarden[bot]", "type": "Bot"}),
        reason="a push by LockWarden[bot], Lockwarden itself",
    ),
    Case(
        "push-by-another-bot",
        "push",
        push(["requirements.txt"], sender={"login": "dependabot[bot]", "type": "Bot"}),
        jobs=[REFRESH_MAIN],
    ),
    Case(
        "push-by-the-app-without-slug-setting",
        "push",
        push(["requirements.txt"], sender=SELF),
        jobs=[REFRESH_MAIN],
        settings={"app_slug": None},
    ),
    Case(
        "push-user-named-like-the-app",
        "push",
        push(["requirements.txt"], sender={"login": "lockwarden[bot]", "type": "User"}),
        jobs=[REFRESH_MAIN],
    ),
    Case(
        "push-truncated-commit-list", "push", push(commits=readme_commits(20)), jobs=[REFRESH_MAIN]
    ),
    Case(
        "push-short-list-is-trusted",
        "push",
        push(commits=readme_commits(19)),
        reason=messages.PUSH_NO_RELEVANT_FILES,
    ),
    Case(
        "push-size-above-list",
        "push",
        push(commits=readme_commits(3), size=30),
        jobs=[REFRESH_MAIN],
    ),
    Case(
        "push-commits-without-file-lists", "push", push(commits=[{"id": SHA}]), jobs=[REFRESH_MAIN]
    ),
    Case("push-no-commit-list", "push", without(push(), "commits"), jobs=[REFRESH_MAIN]),
    Case("push-forced-back-no-commits", "push", push(commits=[], forced=True), jobs=[REFRESH_MAIN]),
    Case(
        "push-ref-moved-onto-known-commit",
        "push",
        push(commits=[]) | {"head_commit": {"id": SHA, "modified": ["README.md"]}},
        jobs=[REFRESH_MAIN],
    ),
    Case("push-nothing", "push", push(commits=[]), reason=messages.PUSH_NO_RELEVANT_FILES),
    Case(
        "push-no-installation",
        "push",
        without(push(["requirements.txt"]), "installation"),
        reason=messages.NO_INSTALLATION,
    ),
    # -- installation ------------------------------------------------------------------------
    Case(
        "installation-created",
        "installation",
        {
            "action": "created",
            "installation": INSTALLATION,
            "repositories": [
                {"full_name": "acme/ml"},
                {"full_name": "acme/web"},
                {"full_name": "acme/ml"},
            ],
        },
        jobs=[
            ("onboard", "acme/ml", {"trigger": "installation.created"}),
            ("onboard", "acme/web", {}),
        ],
    ),
    Case(
        "installation-created-no-list",
        "installation",
        {"action": "created", "installation": INSTALLATION},
        reason=messages.INSTALLATION_NO_REPOSITORIES,
    ),
    Case(
        "installation-deleted",
        "installation",
        {
            "action": "deleted",
            "installation": INSTALLATION,
            "repositories": [{"full_name": "acme/ml"}],
        },
        jobs=[("forget", "acme/ml", {"trigger": "installation.deleted"})],
    ),
    Case(
        "installation-suspend",
        "installation",
        {"action": "suspend", "installation": INSTALLATION},
        reason="action 'suspend' of event 'installation' is not handled",
    ),
    Case(
        "repositories-added",
        "installation_repositories",
        {
            "action": "added",
            "installation": INSTALLATION,
            "repository_selection": "selected",
            "repositories_added": [{"full_name": "acme/web"}],
            "repositories_removed": [],
        },
        jobs=[("onboard", "acme/web", {"trigger": "installation_repositories.added"})],
    ),
    Case(
        "repositories-removed",
        "installation_repositories",
        {
            "action": "removed",
            "installation": INSTALLATION,
            "repositories_added": [],
            "repositories_removed": [{"full_name": "acme/web"}],
        },
        jobs=[("forget", "acme/web", {})],
    ),
    Case(
        "repositories-removed-empty",
        "installation_repositories",
        {"action": "removed", "installation": INSTALLATION},
        reason=messages.INSTALLATION_NO_REPOSITORIES,
    ),
    # -- pull_request ------------------------------------------------------------------------
    Case(
        "pr-merged-bot-branch",
        "pull_request",
        pull_closed(),
        jobs=[
            (
                "cleanup",
                "acme/ml",
                {
                    "branch": "lockwarden/refresh-2024-06-01",
                    "number": 12,
                    "merged": True,
                    "merge_commit_sha": "d" * 40,
                    "head_sha": SHA,
                    "base": "main",
                },
            )
        ],
    ),
    Case(
        "pr-closed-unmerged-bot-branch",
        "pull_request",
        pull_closed(merged=False),
        jobs=[("cleanup", "acme/ml", {"merged": False, "merge_commit_sha": None})],
    ),
    Case(
        "pr-merged-flag-missing-merged-at-set",
        "pull_request",
        pull_closed() | {"pull_request": {**pull_closed()["pull_request"], "merged": None}},
        jobs=[("cleanup", "acme/ml", {"merged": True})],
    ),
    Case(
        "pr-other-branch",
        "pull_request",
        pull_closed("feature/x"),
        reason="the head branch 'feature/x' is not a Lockwarden branch",
    ),
    Case(
        "pr-from-a-fork",
        "pull_request",
        pull_closed(head_repo={"full_name": "mallory/ml", "default_branch": "main"}),
        reason="the head branch belongs to mallory/ml, not to acme/ml",
    ),
    Case(
        "pr-from-a-deleted-fork",
        "pull_request",
        pull_closed(head_repo=None),
        reason="the head branch belongs to a deleted fork, not to acme/ml",
    ),
    Case(
        "pr-opened",
        "pull_request",
        pull_closed() | {"action": "opened"},
        reason="action 'opened' of event 'pull_request' is not handled",
    ),
    Case(
        "pr-no-installation",
        "pull_request",
        without(pull_closed(), "installation"),
        reason=messages.NO_INSTALLATION,
    ),
    # -- issue_comment -----------------------------------------------------------------------
    Case(
        "comment-command",
        "issue_comment",
        comment("/lockwarden upgrade numpy"),
        jobs=[
            (
                "command",
                "acme/ml",
                {
                    "comment_id": 99,
                    "body": "/lockwarden upgrade numpy",
                    "author": "alice",
                    "author_type": "User",
                    "author_association": "MEMBER",
                    "issue_number": 7,
                    "is_pull_request": True,
                    "trigger": "issue_comment.created",
                },
            )
        ],
    ),
    Case(
        "comment-mention",
        "issue_comment",
        comment("@lockwarden rebase"),
        jobs=[("command", "acme/ml", {"body": "@lockwarden rebase"})],
    ),
    Case(
        "comment-mention-without-slug-setting",
        "issue_comment",
        comment("@lockwarden rebase"),
        reason=messages.COMMENT_NO_COMMAND,
        settings={"app_slug": None},
    ),
    Case(
        "comment-command-mid-body-crlf",
        "issue_comment",
        comment('A quote "foo"\r\n\r\n  /lockwarden refresh --env serve\r\n\r\nBar'),
        jobs=[("command", "acme/ml", {"is_pull_request": True})],
    ),
    Case(
        "comment-bare-command",
        "issue_comment",
        comment("/lockwarden"),
        jobs=[("command", "acme/ml", {})],
    ),
    Case(
        "comment-on-an-issue",
        "issue_comment",
        comment("/Lockwarden help", pull_request=False),
        jobs=[("command", "acme/ml", {"is_pull_request": False, "issue_number": 7})],
    ),
    Case(
        "comment-no-command",
        "issue_comment",
        comment("LGTM, thanks /lockwarden"),
        reason=messages.COMMENT_NO_COMMAND,
    ),
    Case(
        "comment-prefix-of-another-word",
        "issue_comment",
        comment("/lockwardenish help"),
        reason=messages.COMMENT_NO_COMMAND,
    ),
    Case(
        "comment-quoted-command",
        "issue_comment",
        comment("> /lockwarden rebase\n\nDone."),
        reason=messages.COMMENT_NO_COMMAND,
    ),
    Case(
        "comment-command-in-code-fence",
        "issue_comment",
        comment("Try:\n```\n/lockwarden help\n```\n"),
        reason=messages.COMMENT_NO_COMMAND,
    ),
    Case(
        "comment-by-a-bot",
        "issue_comment",
        comment("/lockwarden help", user={"login": "lockwarden[bot]", "type": "Bot"}),
        reason="a comment by lockwarden[bot], a bot",
    ),
    Case(
        "comment-by-another-bot",
        "issue_comment",
        comment("/lockwarden help", user={"login": "renovate[bot]", "type": "Bot"}),
        reason="a comment by renovate[bot], a bot",
    ),
    Case(
        "comment-empty-body",
        "issue_comment",
        comment("") | {"comment": {"id": 1, "body": None, "user": ALICE}},
        reason=messages.COMMENT_NO_COMMAND,
    ),
    Case(
        "comment-edited-to-add-command",
        "issue_comment",
        comment("/lockwarden help", action="edited", changes={"body": {"from": "help?"}}),
        jobs=[("command", "acme/ml", {"trigger": "issue_comment.edited"})],
    ),
    Case(
        "comment-edited-command-unchanged",
        "issue_comment",
        comment(
            "/lockwarden help\n\nthanks!",
            action="edited",
            changes={"body": {"from": "/lockwarden help\n\nthanks"}},
        ),
        reason=messages.COMMENT_COMMAND_UNCHANGED,
    ),
    Case(
        "comment-edited-without-changes",
        "issue_comment",
        comment("/lockwarden help", action="edited"),
        jobs=[("command", "acme/ml", {})],
    ),
    Case(
        "comment-deleted",
        "issue_comment",
        comment("/lockwarden help", action="deleted"),
        reason="action 'deleted' of event 'issue_comment' is not handled",
    ),
    Case(
        "comment-no-installation",
        "issue_comment",
        without(comment("/lockwarden help"), "installation"),
        reason=messages.NO_INSTALLATION,
    ),
    # -- check_run ---------------------------------------------------------------------------
    Case(
        "check-run-rerequested",
        "check_run",
        check_run(),
        jobs=[
            (
                "refresh",
                "acme/ml",
                {
                    "mode": "minimal",
                    "branch": "lockwarden/refresh",
                    "sha": SHA,
                    "check_run_id": 4,
                    "trigger": "check_run.rerequested",
                },
            )
        ],
    ),
    Case(
        "check-run-other-name",
        "check_run",
        check_run("pytest"),
        reason="the check run 'pytest' is not Lockwarden's",
    ),
    Case(
        "check-run-other-app",
        "check_run",
        check_run(app_slug="other-app"),
        reason="the check run belongs to the app 'other-app'",
    ),
    Case(
        "check-run-other-app-unknown-slug",
        "check_run",
        check_run(app_slug="other-app"),
        jobs=[("refresh", "acme/ml", {})],
        settings={"app_slug": None},
    ),
    Case(
        "check-run-branch-from-pull-request",
        "check_run",
        check_run(
            head_branch=None,
            pull_requests=[
                {"number": 1, "head": {"ref": "fork-branch", "repo": {"id": 99}}},
                {"number": 2, "head": {"ref": "lockwarden/x", "repo": {"id": 10}}},
            ],
        ),
        jobs=[("refresh", "acme/ml", {"branch": "lockwarden/x"})],
    ),
    Case(
        "check-run-no-branch",
        "check_run",
        check_run(
            head_branch=None,
            pull_requests=[
                {"number": 1, "head": {"ref": "fork-branch", "repo": {"id": 99}}},
                {"number": 3, "head": {"ref": "no-repo"}},
            ],
        ),
        reason=messages.CHECK_RUN_NO_BRANCH,
    ),
    Case(
        "check-run-completed",
        "check_run",
        check_run(action="completed"),
        reason="action 'completed' of event 'check_run' is not handled",
    ),
    Case(
        "check-run-no-installation",
        "check_run",
        without(check_run(), "installation"),
        reason=messages.NO_INSTALLATION,
    ),
    # -- check_suite -------------------------------------------------------------------------
    Case(
        "check-suite-rerequested",
        "check_suite",
        check_suite(),
        jobs=[("refresh", "acme/ml", {"branch": "lockwarden/refresh", "sha": SHA} | SUITE_RERUN)],
    ),
    Case(
        "check-suite-rerequested-without-app-slug",
        "check_suite",
        check_suite(app_slug=None),
        jobs=[("refresh", "acme/ml", {"branch": "lockwarden/refresh"})],
    ),
    Case(
        "check-suite-other-app",
        "check_suite",
        check_suite(app_slug="ci-bot"),
        reason="the check suite belongs to the app 'ci-bot'",
    ),
    Case(
        "check-suite-other-app-unknown-slug",
        "check_suite",
        check_suite(app_slug="ci-bot"),
        jobs=[("refresh", "acme/ml", {})],
        settings={"app_slug": None},
    ),
    Case(
        "check-suite-no-branch",
        "check_suite",
        check_suite(head_branch=None),
        reason=messages.CHECK_SUITE_NO_BRANCH,
    ),
    Case(
        "check-suite-empty-branch",
        "check_suite",
        check_suite(head_branch=""),
        reason=messages.CHECK_SUITE_NO_BRANCH,
    ),
    Case(
        "check-suite-other-branch",
        "check_suite",
        check_suite(head_branch="feature/lockwarden/x"),
        reason=messages.CHECK_SUITE_OTHER_BRANCH.format(branch="feature/lockwarden/x"),
    ),
    Case(
        "check-suite-default-branch",
        "check_suite",
        check_suite(head_branch="main"),
        jobs=[("refresh", "acme/ml", {"mode": "minimal", "branch": "main", **SUITE_RERUN})],
    ),
    Case(
        "check-suite-other-branch",
        "check_suite",
        check_suite(head_branch="feature/x"),
        reason=messages.CHECK_SUITE_OTHER_BRANCH.format(branch="feature/x"),
    ),
    Case(
        "check-suite-no-installation",
        "check_suite",
        without(check_suite(), "installation"),
        reason=messages.NO_INSTALLATION,
    ),
    Case(
        "check-suite-requested",
        "check_suite",
        check_suite(action="requested"),
        reason=messages.CHECK_SUITE_REQUESTED,
    ),
    Case(
        "check-suite-completed",
        "check_suite",
        check_suite(action="completed"),
        reason="action 'completed' of event 'check_suite' is not handled",
    ),
    # -- events nobody handles ---------------------------------------------------------------
    Case(
        "deployment",
        "deployment",
        {"action": "created"},
        reason="event 'deployment' is not handled",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_routing(case: Case) -> None:
    queue = InMemoryQueue()
    response = post(client(make_app(queue, **case.settings)), case.event, case.payload)
    assert response.status_code == 202
    answer = response.json()
    if case.reason is not None:
        assert answer == {"status": "ignored", "reason": case.reason}
        assert not queue.jobs
        return
    assert answer == {"status": "queued", "jobs": [job.id for job in queue.jobs]}
    assert len(queue.jobs) == len(case.jobs)
    for job, (kind, repo, expected) in zip(queue.jobs, case.jobs, strict=True):
        request = job.request
        assert (request.kind, request.repo, request.installation_id) == (kind, repo, 42)
        assert {key: request.payload.get(key) for key in expected} == expected


def test_every_route_is_covered_by_a_case() -> None:
    routes = set(build_router().routes)
    covered = {(case.event, case.payload.get("action")) for case in CASES}
    assert routes <= covered


@pytest.mark.parametrize(
    ("path", "relevant"),
    [
        ("requirements.txt", True),
        ("requirements-dev.txt", True),
        ("services/api/requirements_gpu.txt", True),
        ("requirements/serve.txt", True),
        ("envs/requirements/serve.txt", True),
        ("requirements/README.md", False),
        ("requirements/serve.in", True),
        ("dev.in", True),
        ("MANIFEST.in", False),
        ("poetry.lock", True),
        ("uv.lock", True),
        ("conda-lock.yml", False),
        ("pyproject.toml", True),
        ("libs/core/pyproject.toml", True),
        ("environment.yml", True),
        ("environment.yaml", True),
        ("Dockerfile", True),
        ("Dockerfile.serve", True),
        ("images/train.Dockerfile", True),
        ("images/train.dockerfile", True),
        ("docker/entrypoint.sh", True),
        ("deploy/docker/compose.yml", True),
        ("dockerfiles.md", False),
        (".github/lockwarden.yml", True),
        (".github/lockwarden.yaml", True),
        ("docs/.github/lockwarden.yml", False),
        (".github/workflows/ci.yml", False),
        ("src/model.py", False),
        ("README.md", False),
        ("", False),
    ],
)
def test_relevant_paths(path: str, relevant: bool) -> None:
    assert is_relevant_path(path) is relevant
