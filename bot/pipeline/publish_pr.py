"""Publish for GitHub jobs: the bot branch, the pull request, and the ``lockwarden`` check run.

The pull request's draft status follows each run's tests: a draft while they fail, ready for
review once they pass. A run whose tests did not run leaves it as it is (a person may have
set it), and a switch GitHub refuses becomes the result's note, not a failed run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from bot.git import (
    BotIdentity,
    Clone,
    TokenSource,
    bot_owns_branch,
    commit_files,
    fetch_branch,
    push_branch,
    same_change,
)
from bot.github.client import Client
from bot.github.ensure import (
    Annotation,
    PullRequestRef,
    close_pull_request,
    delete_branch,
    ensure_check_run,
    ensure_comment,
    ensure_draft,
    ensure_pull_request,
    find_open_pull_request,
)
from bot.images import Finding
from bot.observe import stage
from bot.report import messages
from bot.report.escape import code
from bot.report.pull_request import (
    Rollback,
    check_summary,
    commit_text,
    lint_findings,
    pr_body,
    pr_title,
    tests_failed,
)
from bot.results import PublishResult, RunResult

CHECK_NAME = "lockwarden"

log = logging.getLogger(__name__)


@stage("publish")
def publish_pull_request(
    gh: Client,
    clone: Clone,
    result: RunResult,
    *,
    branch: str,
    token: TokenSource,
    identity: BotIdentity,
    labels: tuple[str, ...] = (),
    reviewers: tuple[str, ...] = (),
    extra_files: Mapping[str, str] | None = None,
    title: str | None = None,
    notes: str = "",
) -> PublishResult:
    """One pull request per repository and topic: opened, updated in place, or closed when
    the refresh has nothing left to change. Never rewrites a branch a person pushed to.

    ``extra_files`` are committed with the locks (specs and ignore rules edited by review
    commands); ``title`` replaces the generated one; ``notes`` go above the rollback notes."""
    extra = dict(extra_files or {})
    remote_sha = fetch_branch(clone, branch, token=token)
    existing = find_open_pull_request(gh, clone.repo, branch)
    files = {**extra, **result.changed_files()}
    if not files:
        return _nothing_to_propose(gh, clone, result, existing, branch)
    if remote_sha is not None and not bot_owns_branch(clone, branch, identity):
        return _refuse_human_push(gh, clone, existing, branch)
    sha = commit_files(
        clone, branch, files, commit_text(result, edited=tuple(extra), title=title), identity
    )
    sha = _push(clone, branch, sha, remote_sha, token)
    rollback = Rollback(clone.default_branch, clone.base_sha, sha)
    failed = tests_failed(result)
    check_title, summary = check_summary(result)
    check = ensure_check_run(
        gh,
        clone.repo,
        head_sha=sha,
        name=CHECK_NAME,
        title=check_title,
        summary=summary,
        conclusion="failure" if result.failed else "success",
        annotations=[_annotation(f) for f in lint_findings(result)],
    )
    pull = ensure_pull_request(
        gh,
        clone.repo,
        head=branch,
        base=clone.default_branch,
        title=title or pr_title(result),
        body=pr_body(result, rollback, notes=notes),
        draft=failed,
        labels=labels,
        reviewers=reviewers,
    )
    return PublishResult(
        "opened" if pull.created else "updated",
        pull.number,
        pull.url,
        sha,
        check.id,
        note=_follow_tests(gh, clone.repo, pull, result),
    )


def _follow_tests(gh: Client, repo: str, pull: PullRequestRef, result: RunResult) -> str | None:
    """Make ``pull`` a draft when this run's tests failed and ready when they passed; the
    problem, when GitHub refused the switch."""
    wanted = _draft_wanted(result)
    if wanted is None:
        return None
    switched = ensure_draft(gh, repo, pull, draft=wanted)
    if switched.problem is not None:
        log.warning("%s", switched.problem)
    elif switched.changed:
        log.info("%s#%d: draft is now %s", repo, pull.number, switched.draft)
    return switched.problem


def _draft_wanted(result: RunResult) -> bool | None:
    """True when a test failed, False when tests ran and passed, None when nothing was tested
    (every check skipped, or no image): then there is no reason to change what is there."""
    if tests_failed(result):
        return True
    ran = any(
        status != "skipped"
        for test in result.tests
        for status in (test.status, test.install_check.status, test.pip_check.status)
    )
    return False if ran else None


def _nothing_to_propose(
    gh: Client, clone: Clone, result: RunResult, existing: int | None, branch: str
) -> PublishResult:
    """No file to change: a failing check run when something broke, else the open pull
    request (if any) closed and its branch deleted."""
    if result.failed:
        # Nothing to propose, but something broke: say so where people look.
        check_title, summary = check_summary(result)
        check = ensure_check_run(
            gh,
            clone.repo,
            head_sha=clone.base_sha,
            name=CHECK_NAME,
            title=check_title,
            summary=summary,
            conclusion="failure",
        )
        return PublishResult("failed", existing, check_run_id=check.id, note=check_title)
    if existing is not None:
        close_pull_request(gh, clone.repo, existing, messages.PR_CLOSED_EMPTY)
        delete_branch(gh, clone.repo, branch)
        return PublishResult("closed", existing)
    return PublishResult("unchanged")


def _refuse_human_push(
    gh: Client, clone: Clone, existing: int | None, branch: str
) -> PublishResult:
    """A person pushed to the branch: leave it, and say so on its pull request."""
    note = messages.PR_HUMAN_PUSH.format(branch=code(branch))
    if existing is not None:
        ensure_comment(gh, clone.repo, existing, marker="lockwarden:human-push", body=note)
    return PublishResult("blocked", existing, note=note)


def _push(clone: Clone, branch: str, sha: str, remote_sha: str | None, token: TokenSource) -> str:
    """Push ``sha`` to the branch and return it; a re-run with nothing new keeps the pushed
    commit (and its checks) as they are, and returns that."""
    if remote_sha is not None and same_change(clone, sha, remote_sha):
        return remote_sha
    push_branch(
        clone, branch, token=token, force=remote_sha is not None, expected_remote_sha=remote_sha
    )
    return sha


def _annotation(finding: Finding) -> Annotation:
    level: Literal["notice", "warning", "failure"] = "notice"
    if finding.severity == "error":
        level = "failure"
    elif finding.severity == "warning":
        level = "warning"
    return Annotation(
        path=finding.file,
        line=max(1, finding.line),
        level=level,
        message=finding.message,
        title=finding.rule,
    )
