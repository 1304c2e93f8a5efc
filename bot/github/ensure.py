"""Create-or-update calls toward GitHub, so a re-run never duplicates anything.

A pull request is found by its head branch, a comment by a hidden marker in its body
(``<!-- lockwarden:... -->``), a check run by its name on the head commit. Each call
returns what exists afterwards and whether it had to be created.

A pull request's draft status can only be switched through GraphQL (REST sets it at creation
only): ``ensure_draft`` sends the mutation when the status differs, and a refusal is a value,
not an error, because the pull request itself is already up to date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from githubkit import GitHub
from githubkit.exception import GitHubException, GraphQLFailed, RequestFailed

from bot.github.client import GitHubError, split_full_name

# GitHub rejects a pull request or comment body longer than this.
MAX_BODY = 65_536
# ...and accepts at most this many annotations per check run request.
MAX_ANNOTATIONS = 50
# A check run's summary and text are limited to one character less than a body.
MAX_CHECK_TEXT = 65_535

Conclusion = Literal["success", "failure", "neutral", "cancelled", "skipped", "action_required"]

# The two draft switches, by the status wanted afterwards: (mutation field, document).
DRAFT_MUTATIONS = {
    True: (
        "convertPullRequestToDraft",
        "mutation($id: ID!) { convertPullRequestToDraft(input: {pullRequestId: $id}) "
        "{ pullRequest { id isDraft } } }",
    ),
    False: (
        "markPullRequestReadyForReview",
        "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) "
        "{ pullRequest { id isDraft } } }",
    ),
}
DRAFT_SWITCH = {True: "convert it to a draft", False: "mark it ready for review"}
DRAFT_REFUSED = "{repo}#{number}: GitHub would not {switch} ({reason}). {advice}"
# What to do, by GitHub's GraphQL error type.
DRAFT_ADVICE = {
    "FORBIDDEN": (
        "Grant the App 'Pull requests: write' and 'Contents: write', accept the new "
        "permissions in the installation's settings, then re-run the refresh."
    ),
    "NOT_FOUND": (
        "The installation no longer reaches the pull request: check that the repository is "
        "still selected in the installation's settings."
    ),
    "UNPROCESSABLE": (
        "The pull request was closed or merged meanwhile, or the repository does not allow "
        "drafts; nothing more to do for this run."
    ),
}
DRAFT_ADVICE_OTHER = (
    "Switch it by hand on the pull request page; the next refresh checks its status again."
)


@dataclass(frozen=True)
class PullRequestRef:
    number: int
    url: str
    head_sha: str
    created: bool
    node_id: str = ""
    """GraphQL's global id, what the draft switches take."""
    draft: bool = False


@dataclass(frozen=True)
class DraftRef:
    """A pull request's draft status after :func:`ensure_draft`."""

    draft: bool
    changed: bool
    problem: str | None = None
    """Why the wanted status could not be set, and what to do; None when it is set."""


@dataclass(frozen=True)
class CommentRef:
    id: int
    url: str
    created: bool


@dataclass(frozen=True)
class CheckRunRef:
    id: int
    created: bool


@dataclass(frozen=True)
class Annotation:
    path: str
    line: int
    level: Literal["notice", "warning", "failure"]
    message: str
    title: str = ""


def ensure_pull_request(
    gh: GitHub[Any],
    repo: str,
    *,
    head: str,
    base: str,
    title: str,
    body: str,
    draft: bool = False,
    labels: Sequence[str] = (),
    reviewers: Sequence[str] = (),
) -> PullRequestRef:
    """The open pull request from ``head`` into ``base``, created or updated in place."""
    owner, name = split_full_name(repo)
    body = fit_body(body)
    try:
        existing = gh.rest.pulls.list(
            owner, name, state="open", head=f"{owner}:{head}", base=base
        ).parsed_data
        if existing:
            pull = existing[0]
            updated = gh.rest.pulls.update(
                owner, name, pull.number, title=title, body=body
            ).parsed_data
            ref = PullRequestRef(
                updated.number,
                updated.html_url,
                updated.head.sha,
                False,
                updated.node_id,
                updated.draft is True,
            )
        else:
            created = gh.rest.pulls.create(
                owner, name, title=title, head=head, base=base, body=body, draft=draft
            ).parsed_data
            ref = PullRequestRef(
                created.number,
                created.html_url,
                created.head.sha,
                True,
                created.node_id,
                created.draft is True,
            )
        if labels:
            gh.rest.issues.add_labels(owner, name, ref.number, labels=list(labels))
        if reviewers and ref.created:
            _request_reviewers(gh, owner, name, ref.number, reviewers)
    except GitHubException as exc:
        raise GitHubError(f"{repo}: could not open or update the pull request: {exc}") from exc
    return ref


def ensure_draft(gh: GitHub[Any], repo: str, pull: PullRequestRef, *, draft: bool) -> DraftRef:
    """``pull`` a draft (``draft``) or ready for review, with one GraphQL mutation when its
    status differs and none when it already matches. A refusal (no permission, the pull
    request closed meanwhile, GitHub unreachable) is returned as ``problem``."""
    if pull.draft == draft:
        return DraftRef(draft, changed=False)
    field, document = DRAFT_MUTATIONS[draft]
    try:
        data = gh.graphql(document, {"id": pull.node_id})
    except GraphQLFailed as exc:
        errors = exc.response.errors or []
        kind = errors[0].type if errors else None
        reason = "; ".join(e.message for e in errors) or "no reason given"
        return DraftRef(pull.draft, False, _draft_problem(repo, pull, draft, reason, kind))
    except GitHubException as exc:
        return DraftRef(pull.draft, False, _draft_problem(repo, pull, draft, str(exc), None))
    switched = (data.get(field) or {}).get("pullRequest") or {}
    return DraftRef(bool(switched.get("isDraft", draft)), changed=True)


def _draft_problem(
    repo: str, pull: PullRequestRef, draft: bool, reason: str, kind: str | None
) -> str:
    return DRAFT_REFUSED.format(
        repo=repo,
        number=pull.number,
        switch=DRAFT_SWITCH[draft],
        reason=reason,
        advice=DRAFT_ADVICE.get(kind or "", DRAFT_ADVICE_OTHER),
    )


def _request_reviewers(
    gh: GitHub[Any], owner: str, name: str, number: int, reviewers: Sequence[str]
) -> None:
    try:
        gh.rest.pulls.request_reviewers(owner, name, number, reviewers=list(reviewers))
    except RequestFailed as exc:
        # An unknown reviewer or the PR author must not lose the pull request itself.
        if exc.response.status_code != 422:
            raise


def find_open_pull_request(gh: GitHub[Any], repo: str, head: str) -> int | None:
    owner, name = split_full_name(repo)
    try:
        pulls = gh.rest.pulls.list(owner, name, state="open", head=f"{owner}:{head}").parsed_data
    except GitHubException as exc:
        raise GitHubError(f"{repo}: could not list pull requests: {exc}") from exc
    return pulls[0].number if pulls else None


def close_pull_request(gh: GitHub[Any], repo: str, number: int, comment: str | None) -> None:
    owner, name = split_full_name(repo)
    try:
        if comment:
            gh.rest.issues.create_comment(owner, name, number, body=fit_body(comment))
        gh.rest.pulls.update(owner, name, number, state="closed")
    except GitHubException as exc:
        raise GitHubError(f"{repo}#{number}: could not close the pull request: {exc}") from exc


def ensure_comment(
    gh: GitHub[Any], repo: str, number: int, *, marker: str, body: str
) -> CommentRef:
    """The comment on issue/PR ``number`` that carries ``marker``, created or edited."""
    owner, name = split_full_name(repo)
    hidden = f"<!-- {marker} -->"
    text = f"{fit_body(body.rstrip(), reserve=len(hidden) + 3)}\n\n{hidden}\n"
    comment: Any
    try:
        for comment in gh.rest.paginate(
            gh.rest.issues.list_comments, owner=owner, repo=name, issue_number=number
        ):
            if comment.body and hidden in comment.body:
                if comment.body != text:
                    gh.rest.issues.update_comment(owner, name, comment.id, body=text)
                return CommentRef(comment.id, comment.html_url, False)
        created = gh.rest.issues.create_comment(owner, name, number, body=text).parsed_data
    except GitHubException as exc:
        raise GitHubError(f"{repo}#{number}: could not write the comment: {exc}") from exc
    return CommentRef(created.id, created.html_url, True)


def ensure_check_run(
    gh: GitHub[Any],
    repo: str,
    *,
    head_sha: str,
    name: str,
    title: str,
    summary: str,
    text: str = "",
    conclusion: Conclusion | None = None,
    annotations: Sequence[Annotation] = (),
) -> CheckRunRef:
    """The check run ``name`` on ``head_sha``: in progress until a conclusion is given."""
    owner, repo_name = split_full_name(repo)
    batches = [
        list(annotations[i : i + MAX_ANNOTATIONS])
        for i in range(0, len(annotations), MAX_ANNOTATIONS)
    ] or [[]]
    try:
        runs = gh.rest.checks.list_for_ref(
            owner, repo_name, head_sha, check_name=name
        ).parsed_data.check_runs
        existing = runs[0].id if runs else None
        was_created = False
        for index, batch in enumerate(batches):
            fields: dict[str, Any] = {
                "output": {
                    "title": title,
                    "summary": fit_body(summary, limit=MAX_CHECK_TEXT),
                    "text": fit_body(text, limit=MAX_CHECK_TEXT) if text else "",
                    "annotations": [_annotation(a) for a in batch],
                },
                "status": "in_progress",
            }
            if conclusion and index == len(batches) - 1:
                fields.update(status="completed", conclusion=conclusion)
            if existing is None:
                body = {"name": name, "head_sha": head_sha, **fields}
                created = gh.rest.checks.create(
                    owner, repo_name, data=cast("Any", body)
                ).parsed_data
                existing, was_created = created.id, True
            else:
                gh.rest.checks.update(owner, repo_name, existing, data=cast("Any", fields))
    except GitHubException as exc:
        raise GitHubError(f"{repo}: could not write the {name} check run: {exc}") from exc
    assert existing is not None  # the loop runs at least once
    return CheckRunRef(existing, was_created)


def delete_branch(gh: GitHub[Any], repo: str, branch: str) -> bool:
    """Delete ``branch``; False when it was already gone."""
    owner, name = split_full_name(repo)
    try:
        gh.rest.git.delete_ref(owner, name, f"heads/{branch}")
    except RequestFailed as exc:
        if exc.response.status_code in (404, 422):
            return False
        raise GitHubError(f"{repo}: could not delete {branch}: {exc}") from exc
    except GitHubException as exc:
        raise GitHubError(f"{repo}: could not delete {branch}: {exc}") from exc
    return True


def fit_body(body: str, *, reserve: int = 0, limit: int = MAX_BODY) -> str:
    """Cut a body to GitHub's limit, saying so, rather than having the call rejected."""
    limit -= reserve
    if len(body) <= limit:
        return body
    notice = "\n\n… (truncated: the full report is in the lockwarden check run)\n"
    return body[: limit - len(notice)] + notice


def _annotation(a: Annotation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": a.path,
        "start_line": a.line,
        "end_line": a.line,
        "annotation_level": a.level,
        "message": a.message,
    }
    if a.title:
        out["title"] = a.title
    return out
