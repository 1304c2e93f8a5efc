"""Create-or-update calls against the fake GitHub: a second call changes what the first one
made instead of duplicating it, and every failure surfaces as ``GitHubError``."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from githubkit import GitHub

from bot.github.client import AppCredentials, GitHubApp, GitHubError, TokenScope
from bot.github.ensure import (
    DRAFT_ADVICE,
    MAX_ANNOTATIONS,
    MAX_BODY,
    Annotation,
    DraftRef,
    PullRequestRef,
    close_pull_request,
    delete_branch,
    ensure_check_run,
    ensure_comment,
    ensure_draft,
    ensure_pull_request,
    find_open_pull_request,
)
from bot.github.scopes import CLEANUP, COMMAND_HANDLING, Access
from tests.support.fake_github import FakeGitHub, Installation, RecordedRequest

BRANCH = "lockwarden/refresh"
TRUNCATED = "… (truncated: the full report is in the lockwarden check run)"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake(module_fake: FakeGitHub) -> FakeGitHub:
    """The module's tests share one fake GitHub, each in repositories of its own."""
    return module_fake


@pytest.fixture(scope="module")
def installation(fake: FakeGitHub) -> Installation:
    return fake.create_installation("acme")


@pytest.fixture(scope="module")
def gh(fake: FakeGitHub, installation: Installation) -> Iterator[GitHub[Any]]:
    """An installation client, held here (githubkit namespaces hold it weakly), with one
    connection for the whole module."""
    app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    # One client for the module's many repositories: installation-wide, the commands' grants.
    scope = TokenScope(installation.id, None, COMMAND_HANDLING)
    with app.installation_client(scope) as client:
        yield client


@pytest.fixture
def repo(fake: FakeGitHub, installation: Installation) -> str:
    """A fresh ``acme/svc-<n>`` whose ``lockwarden/refresh`` branch is one commit ahead."""
    name = f"acme/svc-{next(_names)}"
    fake.create_repo(name, files={"README.md": "hello\n"}, installation=installation)
    fake.push_files(name, {"requirements.txt": "numpy==2.0.0\n"}, branch=BRANCH)
    return name


def calls(fake: FakeGitHub, method: str, repo: str, path: str) -> list[RecordedRequest]:
    """The requests to ``/repos/<repo><path>`` (``path``: a regular expression)."""
    return fake.requests_to(method, rf"^/api/v3/repos/{re.escape(repo)}{path}$")


def open_pull(gh: GitHub[Any], repo: str, **fields: Any) -> PullRequestRef:
    args: dict[str, Any] = {"head": BRANCH, "base": "main", "title": "Update locks", "body": "b"}
    args.update(fields)
    return ensure_pull_request(gh, repo, **args)


# -- pull requests ---------------------------------------------------------------------------


def test_pull_request_is_created_with_labels_reviewers_and_draft(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.set_permission(repo, "bob", "write")

    ref = open_pull(
        gh, repo, body="the report", draft=True, labels=["dependencies"], reviewers=["bob"]
    )

    assert ref.created
    assert ref.head_sha == fake.branches(repo)[BRANCH]
    pull = fake.pull(repo, ref.number)
    assert ref.url.endswith(f"/{repo}/pull/{ref.number}")
    assert (pull.title, pull.body, pull.head, pull.base) == (
        "Update locks",
        "the report",
        BRANCH,
        "main",
    )
    assert pull.draft
    assert pull.labels == ["dependencies"]
    assert pull.requested_reviewers == ["bob"]


def test_pull_request_is_updated_in_place_and_reviewers_are_asked_only_once(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.set_permission(repo, "bob", "write")
    fake.set_permission(repo, "carol", "write")
    first = open_pull(gh, repo, labels=["dependencies"], reviewers=["bob"])

    second = open_pull(
        gh,
        repo,
        title="Refresh locks",
        body="the new report",
        labels=["dependencies", "ml"],
        reviewers=["carol"],
    )

    assert not second.created
    assert second.number == first.number
    assert [p.number for p in fake.pulls(repo)] == [first.number]
    pull = fake.pull(repo, first.number)
    assert (pull.title, pull.body) == ("Refresh locks", "the new report")
    assert pull.labels == ["dependencies", "ml"]
    assert pull.requested_reviewers == ["bob"]
    assert len(calls(fake, "POST", repo, r"/pulls/\d+/requested_reviewers")) == 1


def test_an_unknown_reviewer_does_not_lose_the_pull_request(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    ref = open_pull(gh, repo, reviewers=["ghost"])

    assert ref.created
    assert fake.pull(repo, ref.number).requested_reviewers == []
    [request] = calls(fake, "POST", repo, r"/pulls/\d+/requested_reviewers")
    assert request.status == 422


def test_a_reviewer_request_refused_otherwise_is_an_error_and_a_rerun_recovers(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.set_permission(repo, "bob", "write")
    fake.fail_next("POST", rf"/repos/{repo}/pulls/\d+/requested_reviewers$", status=404)

    with pytest.raises(GitHubError, match=f"{repo}: could not open or update the pull request"):
        open_pull(gh, repo, reviewers=["bob"])

    [pull] = fake.pulls(repo)  # opened before the failure; a re-run finds and updates it
    again = open_pull(gh, repo, reviewers=["bob"])
    assert (again.number, again.created) == (pull.number, False)
    assert len(fake.pulls(repo)) == 1


def test_pull_request_body_over_the_limit_is_cut_with_a_notice(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    ref = open_pull(gh, repo, body="x" * (MAX_BODY + 5000))

    body = fake.pull(repo, ref.number).body or ""
    assert len(body) == MAX_BODY
    assert body.rstrip("\n").endswith(TRUNCATED)

    open_pull(gh, repo, body="y" * (MAX_BODY + 1))  # and on update

    body = fake.pull(repo, ref.number).body or ""
    assert len(body) == MAX_BODY
    assert body.startswith("y")
    assert body.rstrip("\n").endswith(TRUNCATED)


def test_a_body_at_the_limit_is_sent_as_is(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    ref = open_pull(gh, repo, body="z" * MAX_BODY)
    assert fake.pull(repo, ref.number).body == "z" * MAX_BODY


def test_find_open_pull_request(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    assert find_open_pull_request(gh, repo, BRANCH) is None

    ref = open_pull(gh, repo)

    assert find_open_pull_request(gh, repo, BRANCH) == ref.number
    assert find_open_pull_request(gh, repo, "lockwarden/other") is None
    fake.close_pull(repo, ref.number)
    assert find_open_pull_request(gh, repo, BRANCH) is None


def test_close_pull_request_with_a_comment(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    ref = open_pull(gh, repo)

    close_pull_request(gh, repo, ref.number, "Nothing left to change; closing.")

    pull = fake.pull(repo, ref.number)
    assert pull.state == "closed"
    assert not pull.merged
    assert [c.body for c in fake.comments(repo, ref.number)] == ["Nothing left to change; closing."]
    assert find_open_pull_request(gh, repo, BRANCH) is None


def test_close_pull_request_without_a_comment(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    ref = open_pull(gh, repo)

    close_pull_request(gh, repo, ref.number, None)

    assert fake.pull(repo, ref.number).state == "closed"
    assert fake.comments(repo, ref.number) == []


def test_closing_a_missing_pull_request_is_a_github_error(gh: GitHub[Any], repo: str) -> None:
    with pytest.raises(GitHubError, match=rf"{repo}#999: could not close"):
        close_pull_request(gh, repo, 999, "bye")


# -- comments --------------------------------------------------------------------------------


def test_comment_is_created_once_then_edited_in_place_across_pages(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    number = open_pull(gh, repo).number
    for i in range(120):
        fake.add_comment(repo, number, f"comment {i}", user="alice")
    fake.add_comment(repo, number, "<!-- lockwarden:other -->", user="alice")

    first = ensure_comment(gh, repo, number, marker="lockwarden:status", body="first\n")

    assert first.created
    listed = len(calls(fake, "GET", repo, rf"/issues/{number}/comments"))
    assert listed >= 5  # 121 comments, 30 a page: every page was read before creating
    assert fake.comments(repo, number)[-1].body == "first\n\n<!-- lockwarden:status -->\n"
    assert first.url.endswith(f"#issuecomment-{first.id}")

    second = ensure_comment(gh, repo, number, marker="lockwarden:status", body="second")

    assert not second.created
    assert second.id == first.id
    assert len(fake.comments(repo, number)) == 122
    edited = fake.comments(repo, number)[-1]
    assert edited.body == "second\n\n<!-- lockwarden:status -->\n"
    assert edited.edits == ["first\n\n<!-- lockwarden:status -->\n"]
    assert len(calls(fake, "GET", repo, rf"/issues/{number}/comments")) >= 2 * listed
    assert len(calls(fake, "PATCH", repo, r"/issues/comments/\d+")) == 1


def test_an_unchanged_comment_is_not_sent_again(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    number = open_pull(gh, repo).number
    ensure_comment(gh, repo, number, marker="lockwarden:known-good", body="Known good.")

    again = ensure_comment(gh, repo, number, marker="lockwarden:known-good", body="Known good.")

    assert not again.created
    assert calls(fake, "PATCH", repo, r"/issues/comments/\d+") == []
    assert len(calls(fake, "POST", repo, rf"/issues/{number}/comments")) == 1
    assert len(fake.comments(repo, number)) == 1


def test_comments_with_different_markers_are_separate(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    number = open_pull(gh, repo).number
    one = ensure_comment(gh, repo, number, marker="lockwarden:a", body="a")
    two = ensure_comment(gh, repo, number, marker="lockwarden:b", body="b")
    assert one.created
    assert two.created
    assert one.id != two.id


def test_a_long_comment_is_cut_and_keeps_its_marker(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    number = open_pull(gh, repo).number

    ensure_comment(gh, repo, number, marker="lockwarden:log", body="l" * (MAX_BODY * 2))

    [comment] = fake.comments(repo, number)
    assert len(comment.body) <= MAX_BODY
    assert TRUNCATED in comment.body
    assert comment.body.endswith("<!-- lockwarden:log -->\n")

    again = ensure_comment(gh, repo, number, marker="lockwarden:log", body="l" * (MAX_BODY * 2))

    assert not again.created
    assert calls(fake, "PATCH", repo, r"/issues/comments/\d+") == []


def test_a_comment_on_a_missing_pull_request_is_a_github_error(gh: GitHub[Any], repo: str) -> None:
    with pytest.raises(GitHubError, match=rf"{repo}#404: could not write the comment"):
        ensure_comment(gh, repo, 404, marker="lockwarden:x", body="x")


# -- check runs ------------------------------------------------------------------------------


def many_annotations(count: int) -> list[Annotation]:
    return [
        Annotation(
            path="Dockerfile",
            line=i + 1,
            level="warning",
            message=f"finding {i}",
            title="LW001" if i % 2 else "",
        )
        for i in range(count)
    ]


def test_check_run_is_created_in_progress_then_completed_in_place(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    head = fake.branches(repo)[BRANCH]

    started = ensure_check_run(
        gh, repo, head_sha=head, name="lockwarden", title="Refreshing", summary="Working."
    )

    assert started.created
    [run] = fake.check_runs(repo, head_sha=head, name="lockwarden")
    assert run.id == started.id
    assert (run.status, run.conclusion, run.completed_at) == ("in_progress", None, None)
    assert (run.title, run.summary) == ("Refreshing", "Working.")

    done = ensure_check_run(
        gh,
        repo,
        head_sha=head,
        name="lockwarden",
        title="Locks refreshed",
        summary="All good.",
        text="details",
        conclusion="success",
    )

    assert done == type(done)(started.id, False)
    [run] = fake.check_runs(repo, head_sha=head)
    assert (run.status, run.conclusion) == ("completed", "success")
    assert (run.title, run.summary, run.text) == ("Locks refreshed", "All good.", "details")
    assert run.completed_at is not None
    assert len(calls(fake, "POST", repo, "/check-runs")) == 1
    assert len(calls(fake, "PATCH", repo, r"/check-runs/\d+")) == 1


def test_check_runs_are_per_name_and_commit(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    head = fake.branches(repo)[BRANCH]
    base = fake.branches(repo)["main"]
    one = ensure_check_run(gh, repo, head_sha=head, name="lockwarden", title="t", summary="s")
    two = ensure_check_run(gh, repo, head_sha=head, name="other", title="t", summary="s")
    three = ensure_check_run(gh, repo, head_sha=base, name="lockwarden", title="t", summary="s")
    assert len({one.id, two.id, three.id}) == 3
    assert one.created
    assert two.created
    assert three.created


def test_annotations_are_sent_in_batches_of_50(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    head = fake.branches(repo)[BRANCH]
    sent = many_annotations(120)

    ref = ensure_check_run(
        gh,
        repo,
        head_sha=head,
        name="lockwarden",
        title="Failed: serve",
        summary="Dockerfile findings",
        conclusion="failure",
        annotations=sent,
    )

    assert ref.created
    [run] = fake.check_runs(repo, head_sha=head)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert [a["message"] for a in run.annotations] == [a.message for a in sent]
    assert run.annotations[1] == {
        "path": "Dockerfile",
        "start_line": 2,
        "end_line": 2,
        "annotation_level": "warning",
        "message": "finding 1",
        "title": "LW001",
    }
    assert "title" not in run.annotations[0]
    batches = [len(h["output"]["annotations"]) for h in run.history]
    assert batches == [MAX_ANNOTATIONS, MAX_ANNOTATIONS, 20]
    # only the last request completes the run: GitHub drops annotations sent after that
    assert [h.get("conclusion") for h in run.history] == [None, None, "failure"]
    assert len(calls(fake, "POST", repo, "/check-runs")) == 1
    assert len(calls(fake, "PATCH", repo, r"/check-runs/\d+")) == 2


def test_annotations_on_an_existing_check_run_are_batched_too(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    head = fake.branches(repo)[BRANCH]
    ensure_check_run(gh, repo, head_sha=head, name="lockwarden", title="t", summary="s")

    ensure_check_run(
        gh,
        repo,
        head_sha=head,
        name="lockwarden",
        title="t",
        summary="s",
        annotations=many_annotations(51),
    )

    [run] = fake.check_runs(repo, head_sha=head)
    assert len(run.annotations) == 51
    assert run.status == "in_progress"
    assert len(calls(fake, "PATCH", repo, r"/check-runs/\d+")) == 2


def test_a_huge_check_run_summary_is_cut_to_what_github_accepts(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    head = fake.branches(repo)[BRANCH]

    ensure_check_run(
        gh,
        repo,
        head_sha=head,
        name="lockwarden",
        title="Locks refreshed",
        summary="s" * 100_000,
        text="t" * 100_000,
        conclusion="success",
    )

    [run] = fake.check_runs(repo, head_sha=head)
    assert run.summary is not None
    assert run.text is not None
    assert len(run.summary) <= 65_535  # GitHub's limit for a check run's summary and text
    assert len(run.text) <= 65_535
    assert TRUNCATED in run.summary


def test_a_check_run_on_an_unknown_commit_is_a_github_error(gh: GitHub[Any], repo: str) -> None:
    with pytest.raises(GitHubError, match="could not write the lockwarden check run"):
        ensure_check_run(gh, repo, head_sha="f" * 40, name="lockwarden", title="t", summary="s")


# -- branches and names ----------------------------------------------------------------------


def test_delete_branch_then_it_is_already_gone(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    assert delete_branch(gh, repo, BRANCH) is True
    assert BRANCH not in fake.branches(repo)

    assert delete_branch(gh, repo, BRANCH) is False


def test_delete_branch_refused_is_a_github_error(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.fail_next("DELETE", rf"/repos/{repo}/git/refs/heads/", status=401)

    with pytest.raises(GitHubError, match=rf"{repo}: could not delete {BRANCH}"):
        delete_branch(gh, repo, BRANCH)

    assert BRANCH in fake.branches(repo)


def test_delete_branch_with_github_unreachable_is_a_github_error(
    fake: FakeGitHub, installation: Installation, unreachable_index_url: str
) -> None:
    app = GitHubApp(
        AppCredentials(fake.app_id, fake.private_key_pem, unreachable_index_url + "/api/v3")
    )
    client = app.installation_client(TokenScope(installation.id, "acme/svc", CLEANUP))

    with pytest.raises(GitHubError, match="acme/svc: could not delete"):
        delete_branch(client, "acme/svc", BRANCH)


def test_a_bad_repository_name_fails_before_any_request(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    before = len(fake.requests)
    with pytest.raises(GitHubError, match="'acme' is not OWNER/NAME"):
        ensure_pull_request(gh, "acme", head=BRANCH, base="main", title="t", body="b")
    assert len(fake.requests) == before


# -- draft status ----------------------------------------------------------------------------


def graphql_calls(fake: FakeGitHub) -> list[dict[str, Any]]:
    """The GraphQL requests' bodies, in order."""
    return [r.json() for r in fake.requests_to("POST", r"/graphql$")]


def test_the_pull_request_ref_carries_its_node_id_and_draft_status(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    created = open_pull(gh, repo, draft=True)
    updated = open_pull(gh, repo, draft=False)  # an update never changes the draft status

    owner, name = repo.split("/")
    node_id = gh.rest.pulls.get(owner, name, created.number).parsed_data.node_id
    assert (created.node_id, created.draft) == (node_id, True)
    assert (updated.node_id, updated.draft, updated.created) == (node_id, True, False)
    assert fake.pull(repo, created.number).draft


def test_ensure_draft_switches_both_ways_and_sends_nothing_when_it_matches(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    ready = open_pull(gh, repo)
    before = len(graphql_calls(fake))

    unchanged = ensure_draft(gh, repo, ready, draft=False)
    drafted = ensure_draft(gh, repo, ready, draft=True)
    drafted_pull = fake.pull(repo, ready.number).draft
    again = ensure_draft(gh, repo, open_pull(gh, repo), draft=False)

    assert unchanged == DraftRef(False, changed=False)
    assert drafted == DraftRef(True, changed=True)
    assert again == DraftRef(False, changed=True)
    assert drafted_pull
    assert not fake.pull(repo, ready.number).draft
    sent = graphql_calls(fake)[before:]
    assert [re.findall(r"(\w+)\(input:", body["query"]) for body in sent] == [
        ["convertPullRequestToDraft"],
        ["markPullRequestReadyForReview"],
    ]
    assert {body["variables"]["id"] for body in sent} == {ready.node_id}


def test_ensure_draft_without_the_permission_says_what_to_grant_and_changes_nothing(
    fake: FakeGitHub, installation: Installation, gh: GitHub[Any], repo: str
) -> None:
    pull = open_pull(gh, repo)
    app = GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))
    reader = Access.of("read pull requests", pull_requests="read", metadata="read")

    with app.installation_client(TokenScope(installation.id, repo, reader)) as read_only:
        refused = ensure_draft(read_only, repo, pull, draft=True)

    assert (refused.draft, refused.changed) == (False, False)
    assert refused.problem == (
        f"{repo}#{pull.number}: GitHub would not convert it to a draft (Resource not "
        f"accessible by integration). {DRAFT_ADVICE['FORBIDDEN']}"
    )
    assert not fake.pull(repo, pull.number).draft


def test_ensure_draft_on_a_pull_request_closed_meanwhile_is_a_problem_not_an_error(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    pull = open_pull(gh, repo, draft=True)
    fake.close_pull(repo, pull.number)

    refused = ensure_draft(gh, repo, pull, draft=False)

    assert (refused.draft, refused.changed) == (True, False)
    assert refused.problem is not None
    assert refused.problem.startswith(f"{repo}#{pull.number}: GitHub would not mark it ready")
    assert refused.problem.endswith(DRAFT_ADVICE["UNPROCESSABLE"])
    closed = fake.pull(repo, pull.number)
    assert (closed.state, closed.draft) == ("closed", True)


def test_ensure_draft_with_github_unreachable_is_a_problem_not_an_error(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    pull = open_pull(gh, repo)
    fake.fail_next("POST", r"/graphql$", status=401)

    refused = ensure_draft(gh, repo, pull, draft=True)

    assert (refused.draft, refused.changed) == (False, False)
    assert refused.problem is not None
    assert "Switch it by hand on the pull request page" in refused.problem
    assert not fake.pull(repo, pull.number).draft


# -- errors and retries ----------------------------------------------------------------------


def test_a_server_error_is_retried_transparently(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.fail_next("GET", rf"/repos/{repo}/pulls$", status=500)

    ref = open_pull(gh, repo)

    assert ref.created
    statuses = [r.status for r in calls(fake, "GET", repo, "/pulls")]
    assert statuses == [500, 200]
    assert len(fake.pulls(repo)) == 1


def test_an_unknown_repository_is_a_github_error(gh: GitHub[Any], repo: str) -> None:
    with pytest.raises(GitHubError, match="acme/nope: could not list pull requests"):
        find_open_pull_request(gh, "acme/nope", BRANCH)


def test_a_rejected_token_is_a_github_error(fake: FakeGitHub, gh: GitHub[Any], repo: str) -> None:
    fake.fail_next("GET", rf"/repos/{repo}/pulls$", status=401)

    with pytest.raises(GitHubError, match=f"{repo}: could not open or update"):
        open_pull(gh, repo)

    assert fake.pulls(repo) == []


def test_a_pull_request_without_commits_is_a_github_error(
    fake: FakeGitHub, gh: GitHub[Any], repo: str
) -> None:
    fake.create_branch(repo, "lockwarden/empty")
    with pytest.raises(GitHubError, match="could not open or update the pull request"):
        open_pull(gh, repo, head="lockwarden/empty")
