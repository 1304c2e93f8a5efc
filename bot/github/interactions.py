"""Reads and small writes around a job: who may run a comment command (the collaborator's
permission at the time of the command), what pull request it was written on, the reactions
that acknowledge it, a commit's message and the default branch's head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from bot.github.client import GitHubError, split_full_name

Reaction = Literal["eyes", "rocket", "confused", "+1", "-1", "laugh", "heart", "hooray"]

WRITE_ROLES = frozenset({"admin", "maintain", "write"})
"""Roles that may run commands: people who could push the change themselves."""


@dataclass(frozen=True)
class PullInfo:
    number: int
    head_ref: str
    head_sha: str
    base_ref: str
    state: str
    head_repo: str | None
    """``owner/name`` of the head branch's repository (a fork's, for a fork's PR)."""


def permission_of(gh: GitHub[Any], repo: str, login: str) -> str:
    """The user's role on ``repo`` now: admin, maintain, write, triage, read or none.

    ``role_name`` names maintain and triage, which the legacy ``permission`` field folds
    into write and read; a custom role falls back to its base permission."""
    owner, name = split_full_name(repo)
    try:
        data = gh.rest.repos.get_collaborator_permission_level(owner, name, login).parsed_data
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return "none"  # not a collaborator (or no such user)
        raise GitHubError(f"{repo}: could not read the permission of @{login}: {exc}") from exc
    except GitHubException as exc:
        raise GitHubError(f"{repo}: could not read the permission of @{login}: {exc}") from exc
    role = (data.role_name or "").lower()
    known = {"admin", "maintain", "write", "triage", "read", "none"}
    return role if role in known else (data.permission or "none").lower()


def can_write(role: str) -> bool:
    return role in WRITE_ROLES


def add_reaction(gh: GitHub[Any], repo: str, comment_id: int, content: Reaction) -> None:
    """React to an issue or pull request comment. GitHub answers 200 for a reaction that is
    already there, so this is idempotent; a failure is not worth failing a command for."""
    owner, name = split_full_name(repo)
    try:
        gh.rest.reactions.create_for_issue_comment(owner, name, comment_id, content=content)
    except GitHubException:
        return


def get_pull(gh: GitHub[Any], repo: str, number: int) -> PullInfo:
    owner, name = split_full_name(repo)
    try:
        data = gh.rest.pulls.get(owner, name, number).parsed_data
    except GitHubException as exc:
        raise GitHubError(f"{repo}#{number}: could not read the pull request: {exc}") from exc
    head_repo = data.head.repo.full_name if data.head.repo is not None else None
    return PullInfo(
        number=data.number,
        head_ref=data.head.ref,
        head_sha=data.head.sha,
        base_ref=data.base.ref,
        state=data.state,
        head_repo=head_repo,
    )


def commit_message(gh: GitHub[Any], repo: str, sha: str) -> str | None:
    """The full message of commit ``sha``; ``None`` when GitHub cannot say."""
    owner, name = split_full_name(repo)
    try:
        return gh.rest.repos.get_commit(owner, name, sha).parsed_data.commit.message
    except GitHubException:
        return None


def default_branch_head(gh: GitHub[Any], repo: str) -> str | None:
    """The commit at the head of the default branch; ``None`` when GitHub is unreachable."""
    owner, name = split_full_name(repo)
    try:
        data = gh.rest.repos.get(owner, name).parsed_data
        return gh.rest.repos.get_branch(owner, name, data.default_branch).parsed_data.commit.sha
    except GitHubException:
        return None
