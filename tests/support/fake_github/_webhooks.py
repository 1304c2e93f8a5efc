"""Webhook payloads built from the fake's state (and acting on it, as the event would)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tests.support.fake_github._git import ZERO_SHA
from tests.support.fake_github._render import iso, node_id
from tests.support.fake_github._state import JSON, Installation, Repo

if TYPE_CHECKING:
    from tests.support.fake_github._fake import FakeGitHub


def build(fake: FakeGitHub, event: str, action: str | None, fields: Mapping[str, Any]) -> JSON:
    builders = {
        ("installation", "created"): installation_created,
        ("installation_repositories", "added"): installation_repositories_added,
        ("push", None): push,
        ("pull_request", "closed"): pull_request_closed,
        ("pull_request", "converted_to_draft"): pull_request_converted_to_draft,
        ("pull_request", "ready_for_review"): pull_request_ready_for_review,
        ("issue_comment", "created"): issue_comment_created,
        ("issue_comment", "edited"): issue_comment_edited,
        ("check_run", "rerequested"): check_run_rerequested,
        ("check_suite", "rerequested"): check_suite_rerequested,
    }
    builder = builders.get((event, action))
    if builder is None:
        known = ", ".join(f"{e}.{a}" if a else e for e, a in builders)
        raise ValueError(f"no payload builder for {event}.{action} (known: {known})")
    payload: JSON = builder(fake, **fields)  # type: ignore[operator]
    return payload


def _installation_ref(fake: FakeGitHub, repo: Repo) -> JSON:
    inst = fake.installation_for(repo.full_name)
    if inst is None:
        raise ValueError(f"the app is not installed on {repo.full_name}")
    raw = f"023:IntegrationInstallation{inst.id}".encode()
    return {"id": inst.id, "node_id": base64.b64encode(raw).decode()}


def _repo_event(fake: FakeGitHub, repo: Repo, sender: str) -> JSON:
    repository = fake.render.repo(repo)
    repository.pop("permissions", None)
    data: JSON = {
        "repository": repository,
        "sender": fake.render.user(sender),
        "installation": _installation_ref(fake, repo),
    }
    if fake.user(repo.owner).type == "Organization":
        data["organization"] = fake.render.organization(repo.owner)
    return data


def _inst(fake: FakeGitHub, installation: Installation | int) -> Installation:
    return fake.installations[installation if isinstance(installation, int) else installation.id]


def installation_created(
    fake: FakeGitHub, *, installation: Installation | int, sender: str = "alice"
) -> JSON:
    inst = _inst(fake, installation)
    repos = [r for r in fake.all_repos() if fake.installation_covers(inst, r)]
    return {
        "action": "created",
        "installation": fake.render.installation(inst),
        "repositories": [fake.render.repo_brief(r) for r in repos],
        "requester": None,
        "sender": fake.render.user(sender),
    }


def installation_repositories_added(
    fake: FakeGitHub,
    *,
    installation: Installation | int,
    repos: Sequence[str],
    sender: str = "alice",
) -> JSON:
    """The repositories ``repos`` (existing full names) join the installation."""
    inst = _inst(fake, installation)
    added = [fake.repo(name) for name in repos]
    if inst.repository_selection == "selected":
        fake.add_repos_to_installation(inst, [r.full_name for r in added])
    return {
        "action": "added",
        "installation": fake.render.installation(inst),
        "repository_selection": inst.repository_selection,
        "repositories_added": [fake.render.repo_brief(r) for r in added],
        "repositories_removed": [],
        "requester": None,
        "sender": fake.render.user(sender),
    }


def push(
    fake: FakeGitHub,
    *,
    repo: str,
    before: str | None = None,
    after: str | None = None,
    branch: str | None = None,
    pusher: str = "alice",
) -> JSON:
    """A push to ``branch`` (default branch) from ``before`` (default: the first parent of
    ``after``) to ``after`` (default: the branch tip), with the commits in between."""
    target = fake.repo(repo)
    git = target.git
    branch = branch or target.default_branch
    if after is None:
        after = git.branch_sha(branch) or ZERO_SHA
    if before is None:
        parents = git.commit(after).parents if after != ZERO_SHA else ()
        before = parents[0] if parents else ZERO_SHA
    commits = []
    if after != ZERO_SHA:
        exclude = before if before != ZERO_SHA else None
        commits = [
            _push_commit(fake, target, c.sha) for c in git.log(after, exclude=exclude, reverse=True)
        ]
    html = f"{fake.git_url}/{target.full_name}"
    forced = before != ZERO_SHA and after != ZERO_SHA and not git.is_ancestor(before, after)
    head_commit = (
        commits[-1]
        if commits
        else (_push_commit(fake, target, after) if after != ZERO_SHA else None)
    )
    user = fake.user(pusher)
    data: JSON = {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "repository": fake.render.repo_for_push(target),
        "pusher": {"name": user.login, "email": f"{user.login}@example.com"},
        "created": before == ZERO_SHA,
        "deleted": after == ZERO_SHA,
        "forced": forced,
        "base_ref": None,
        "compare": f"{html}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": head_commit,
    }
    base = _repo_event(fake, target, pusher)
    base.pop("repository")
    data.update(base)
    return data


def _push_commit(fake: FakeGitHub, repo: Repo, sha: str) -> JSON:
    info = repo.git.commit(sha)
    changes = repo.git.changes(sha)
    return {
        "id": info.sha,
        "tree_id": info.tree,
        "distinct": True,
        "message": info.message,
        "timestamp": iso(info.committed_at),
        "url": f"{fake.git_url}/{repo.full_name}/commit/{info.sha}",
        "author": {"name": info.author.name, "email": info.author.email},
        "committer": {"name": info.committer.name, "email": info.committer.email},
        "added": changes.added,
        "removed": changes.removed,
        "modified": changes.modified,
    }


def pull_request_closed(
    fake: FakeGitHub,
    *,
    repo: str,
    number: int,
    merged: bool | None = None,
    sender: str | None = None,
) -> JSON:
    """``pull_request.closed``.  An open pull request is first merged (``merged=True``) or
    closed (otherwise) by ``sender`` (default ``alice``)."""
    target = fake.repo(repo)
    pr = fake.pull(repo, number)
    if pr.state == "open":
        if merged:
            fake.merge(target, pr, "merge", sender or "alice")
        else:
            fake.close_pull(repo, number)
    elif merged is not None and merged != pr.merged:
        raise ValueError(f"#{number} is closed with merged={pr.merged}")
    data: JSON = {
        "action": "closed",
        "number": pr.number,
        "pull_request": fake.render.pull(target, pr, full=True),
    }
    data.update(_repo_event(fake, target, sender or pr.merged_by or "alice"))
    return data


def pull_request_converted_to_draft(
    fake: FakeGitHub, *, repo: str, number: int, sender: str = "alice"
) -> JSON:
    """``pull_request.converted_to_draft``: ``sender`` makes open pull request ``number`` a
    draft (what the ``convertPullRequestToDraft`` mutation does)."""
    return _draft_switched(fake, repo, number, sender, draft=True)


def pull_request_ready_for_review(
    fake: FakeGitHub, *, repo: str, number: int, sender: str = "alice"
) -> JSON:
    """``pull_request.ready_for_review``: ``sender`` marks draft ``number`` ready."""
    return _draft_switched(fake, repo, number, sender, draft=False)


def _draft_switched(fake: FakeGitHub, repo: str, number: int, sender: str, *, draft: bool) -> JSON:
    target = fake.repo(repo)
    pr = fake.pull(repo, number)
    if pr.state != "open":
        raise ValueError(f"#{number} is closed")
    pr.draft = draft
    data: JSON = {
        "action": "converted_to_draft" if draft else "ready_for_review",
        "number": pr.number,
        "pull_request": fake.render.pull(target, pr, full=True),
    }
    data.update(_repo_event(fake, target, sender))
    return data


def issue_comment_created(
    fake: FakeGitHub, *, repo: str, number: int, body: str, user: str = "alice"
) -> JSON:
    """A human comments ``body`` on issue or pull request ``number`` (the comment is stored).
    ``issue`` has a ``pull_request`` key only when ``number`` is a pull request."""
    target = fake.repo(repo)
    commented = fake.issue_or_pull(target, number)
    comment = fake.create_comment(target, number, body, fake.user(user).login, via_app=False)
    data: JSON = {
        "action": "created",
        "issue": fake.render.issue_or_pull(target, commented),
        "comment": fake.render.comment(target, comment),
    }
    data.update(_repo_event(fake, target, comment.user))
    return data


def issue_comment_edited(
    fake: FakeGitHub, *, repo: str, comment_id: int, body: str, user: str | None = None
) -> JSON:
    """Comment ``comment_id`` is edited to ``body`` by ``user`` (default: its author)."""
    target = fake.repo(repo)
    comment = target.comments[comment_id]
    old = comment.body
    fake.update_comment(comment, body)
    commented = fake.issue_or_pull(target, comment.number)
    data: JSON = {
        "action": "edited",
        "changes": {"body": {"from": old}},
        "issue": fake.render.issue_or_pull(target, commented),
        "comment": fake.render.comment(target, comment),
    }
    data.update(_repo_event(fake, target, user or comment.user))
    return data


def check_run_rerequested(
    fake: FakeGitHub, *, repo: str, check_run_id: int, sender: str = "alice"
) -> JSON:
    target = fake.repo(repo)
    run = target.check_runs[check_run_id]
    data: JSON = {
        "action": "rerequested",
        "check_run": fake.render.check_run(target, run, for_webhook=True),
    }
    data.update(_repo_event(fake, target, sender))
    return data


def check_suite_rerequested(
    fake: FakeGitHub, *, repo: str, head_sha: str, sender: str = "alice"
) -> JSON:
    """A person re-runs all checks of the App's check suite on commit ``head_sha`` (one that
    has check runs: GitHub shows no other). ``head_branch`` is a branch whose tip is that commit,
    None when none is (a fork's pull request, a branch deleted or moved on since)."""
    target = fake.repo(repo)
    suite_id = target.check_suites.get(head_sha)
    if suite_id is None:
        raise ValueError(f"{repo} has no check suite on {head_sha}")
    runs = [r for r in target.check_runs.values() if r.check_suite_id == suite_id]
    done = all(r.status == "completed" for r in runs)
    conclusions = [r.conclusion for r in runs]
    heads = [name for name, sha in target.git.branches().items() if sha == head_sha]
    commit = target.git.commit(head_sha)
    api_repo = f"{fake.render.api}/repos/{target.full_name}"
    started = min((r.started_at or 0.0) for r in runs)
    data: JSON = {
        "action": "rerequested",
        "check_suite": {
            "id": suite_id,
            "node_id": node_id("CS", suite_id),
            "head_branch": heads[0] if heads else None,
            "head_sha": head_sha,
            "status": "completed" if done else "in_progress",
            "conclusion": ("failure" if "failure" in conclusions else conclusions[-1])
            if done
            else None,
            "url": f"{api_repo}/check-suites/{suite_id}",
            "check_runs_url": f"{api_repo}/check-suites/{suite_id}/check-runs",
            "before": commit.parents[0] if commit.parents else None,
            "after": head_sha,
            "pull_requests": fake.render.check_run(target, runs[0])["pull_requests"],
            "app": fake.render.app(),
            "latest_check_runs_count": len(runs),
            "rerequestable": True,
            "runs_rerequestable": True,
            "created_at": iso(started),
            "updated_at": iso(max((r.completed_at or started) for r in runs)),
            "head_commit": {
                "id": commit.sha,
                "tree_id": commit.tree,
                "message": commit.message,
                "timestamp": iso(commit.committed_at),
                "author": {"name": commit.author.name, "email": commit.author.email},
                "committer": {"name": commit.committer.name, "email": commit.committer.email},
            },
        },
    }
    data.update(_repo_event(fake, target, sender))
    return data
