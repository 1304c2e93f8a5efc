"""The fake GitHub, driven the way the bot drives GitHub: githubkit for REST, git over HTTP."""

from __future__ import annotations

import base64
import calendar
import gzip
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded
from githubkit_schemas.latest.models import (
    ContentFile,
    WebhookCheckRunRerequested,
    WebhookCheckSuiteRerequested,
    WebhookInstallationCreated,
    WebhookInstallationRepositoriesAdded,
    WebhookIssueCommentCreated,
    WebhookIssueCommentEdited,
    WebhookPullRequestClosed,
    WebhookPullRequestConvertedToDraft,
    WebhookPullRequestReadyForReview,
    WebhookPush,
)
from jwt.api_jws import PyJWS
from pydantic import BaseModel

from tests.support.fake_github import ZERO_SHA, FakeGitHub, Installation

REPO = "acme/models"
FILES = {
    "requirements.in": "torch\n",
    "requirements.txt": "torch==2.3.0\n",
    "src/train.py": "print('train')\n",
}


@pytest.fixture
def inst(fake: FakeGitHub) -> Installation:
    installation = fake.create_installation("acme")
    fake.create_repo(REPO, files=FILES, installation=installation)
    return installation


def app_client(fake: FakeGitHub, *, private_key: str | None = None, **kwargs: Any) -> GitHub[Any]:
    # A cache per client: githubkit's default cache is process-wide.
    return GitHub(
        AppAuthStrategy(fake.app_id, private_key or fake.private_key_pem),
        base_url=fake.api_url + "/",
        cache_strategy=MemCacheStrategy(),
        **kwargs,
    )


def install_client(fake: FakeGitHub, inst: Installation, **kwargs: Any) -> GitHub[Any]:
    app = app_client(fake, **kwargs)
    return app.with_auth(app.auth.as_installation(inst.id))


def token_client(fake: FakeGitHub, token: str, **kwargs: Any) -> GitHub[Any]:
    return GitHub(
        TokenAuthStrategy(token),
        base_url=fake.api_url + "/",
        cache_strategy=MemCacheStrategy(),
        **kwargs,
    )


def status_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """The status of the error that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(RequestFailed) as info:
        call(*args, **kwargs)
    return info.value.response.status_code


# -- app authentication ------------------------------------------------------------------------


def test_app_jwt_lists_installations_and_mints_tokens(fake: FakeGitHub, inst: Installation) -> None:
    app = app_client(fake)
    me = app.rest.apps.get_authenticated().parsed_data
    assert me is not None
    assert (me.id, me.slug) == (fake.app_id, fake.app_slug)
    assert [i.id for i in app.rest.apps.list_installations().parsed_data] == [inst.id]
    assert app.rest.apps.get_installation(inst.id).parsed_data.account is not None
    assert app.rest.apps.get_repo_installation("acme", "models").parsed_data.id == inst.id
    assert status_of(app.rest.apps.get_repo_installation, "acme", "absent") == 404

    created = app.rest.apps.create_installation_access_token(inst.id)
    assert created.status_code == 201
    token = created.parsed_data
    assert token.token.startswith("ghs_")
    assert len(token.token) == 40
    assert token.permissions
    assert token.permissions.contents == "write"
    assert token.repository_selection == "all"
    expires = calendar.timegm(time.strptime(token.expires_at, "%Y-%m-%dT%H:%M:%SZ"))
    assert 3500 < expires - time.time() <= 3600

    client = token_client(fake, token.token)  # keep a reference: .rest holds the client weakly
    repo = client.rest.repos.get("acme", "models").parsed_data
    assert repo.full_name == REPO
    assert repo.default_branch == "main"
    assert repo.clone_url == f"{fake.git_url}/acme/models.git"
    assert repo.private is True
    assert fake.requests_to("POST", "/access_tokens$")[-1].auth == "jwt"
    assert fake.requests_to("GET", "/repos/acme/models$")[-1].auth == f"installation:{inst.id}"
    assert fake.requests[-1].headers["authorization"] == "token <redacted>"


def test_jwt_signed_by_another_key_is_rejected(fake: FakeGitHub, inst: Installation) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    app = app_client(fake, private_key=pem)
    assert status_of(app.rest.apps.get_authenticated) == 401
    assert status_of(app.rest.apps.create_installation_access_token, inst.id) == 401


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iat": -1200, "exp": -600}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"iat": -60, "exp": 900}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iat": 300, "exp": 600}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iat": -60, "exp": 500, "iss": 1}, "A JSON web token could not be decoded"),
    ],
)
def test_jwt_claims_are_checked(
    fake: FakeGitHub, inst: Installation, claims: dict[str, int], message: str
) -> None:
    now = int(time.time())
    payload = {"iss": claims.get("iss", fake.app_id), "iat": now + claims["iat"]}
    payload["exp"] = now + claims["exp"]
    # PyJWS: pyjwt's own encode refuses an integer ``iss``, which GitHub accepts.
    encoded = PyJWS().encode(json.dumps(payload).encode(), fake.private_key_pem, algorithm="RS256")
    response = httpx.post(
        f"{fake.api_url}/app/installations/{inst.id}/access_tokens",
        headers={"Authorization": f"Bearer {encoded}"},
    )
    assert response.status_code == 401
    assert response.json()["message"].startswith(message)


def test_jwt_iss_may_be_an_int_a_string_or_the_client_id(fake: FakeGitHub) -> None:
    now = int(time.time())
    for iss in (fake.app_id, str(fake.app_id), fake.client_id):
        claims = {"iss": iss, "iat": now - 60, "exp": now + 540}
        encoded = PyJWS().encode(
            json.dumps(claims).encode(), fake.private_key_pem, algorithm="RS256"
        )
        response = httpx.get(f"{fake.api_url}/app", headers={"Authorization": f"Bearer {encoded}"})
        assert response.status_code == 200, response.text


def test_installation_tokens_expire_and_stay_in_their_installation(
    fake: FakeGitHub, inst: Installation
) -> None:
    other = fake.create_installation("globex")
    fake.create_repo("globex/vision", files={"a.txt": "a\n"}, installation=other)

    foreign = fake.issue_token(other).token
    foreign_client = token_client(fake, foreign)
    assert status_of(foreign_client.rest.repos.get, "acme", "models") == 404
    forged = token_client(fake, "ghs_" + "x" * 36)
    assert status_of(forged.rest.repos.get, "acme", "models") == 401
    assert httpx.get(f"{fake.api_url}/repos/{REPO}").status_code == 401

    short = fake.issue_token(inst, lifetime_s=1.5)
    client = token_client(fake, short.token)
    assert client.rest.repos.get("acme", "models").status_code == 200
    time.sleep(max(0.0, short.expires_at - time.time()) + 0.05)
    with pytest.raises(RequestFailed) as info:
        client.rest.repos.get("acme", "models")
    assert info.value.response.status_code == 401
    assert info.value.response.json()["message"] == "Bad credentials"

    kept = fake.issue_token(inst).token
    fake.expire_tokens()
    kept_client = token_client(fake, kept)
    assert status_of(kept_client.rest.repos.get, "acme", "models") == 401

    narrowed = fake.issue_token(inst, permissions={"metadata": "read", "pull_requests": "read"})
    limited = token_client(fake, narrowed.token)
    assert limited.rest.pulls.list("acme", "models").status_code == 200
    assert status_of(limited.rest.issues.create_comment, "acme", "models", 1, body="x") == 403


def test_app_installation_auth_mints_one_token_until_it_expires(
    fake: FakeGitHub, inst: Installation
) -> None:
    github = install_client(fake, inst)
    for _ in range(3):
        github.rest.repos.get("acme", "models")
    assert len(fake.requests_to("POST", "/access_tokens$")) == 1

    # githubkit keeps a token until one minute before it expires: a short lifetime means a
    # fresh token for every request.
    fake.token_lifetime_s = 30
    github = install_client(fake, inst)
    for _ in range(2):
        github.rest.repos.get("acme", "models")
    assert len(fake.requests_to("POST", "/access_tokens$")) == 3


def test_token_narrowed_to_repositories(fake: FakeGitHub, inst: Installation) -> None:
    fake.create_repo("acme/other", files={"x": "1"})
    app = app_client(fake)
    token = app.rest.apps.create_installation_access_token(inst.id, repositories=["models"])
    data = token.parsed_data
    assert data.repository_selection == "selected"
    assert [r.full_name for r in data.repositories or []] == [REPO]
    client = token_client(fake, data.token)
    assert client.rest.repos.get("acme", "models").status_code == 200
    assert status_of(client.rest.repos.get, "acme", "other") == 404
    create = app.rest.apps.create_installation_access_token
    assert status_of(create, inst.id, repositories=["nope"]) == 422


def test_token_narrowing_refusals_carry_githubs_messages(
    fake: FakeGitHub, inst: Installation
) -> None:
    fake.create_repo("acme/other", files={"x": "1"}, installation=inst)
    app = app_client(fake)
    before = len(fake.tokens)

    def refusal(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with pytest.raises(RequestFailed) as info:
            app.request("POST", f"/app/installations/{inst.id}/access_tokens", json=body)
        return info.value.response.status_code, info.value.response.json()

    outside = "There is at least one repository that does not exist or is not accessible to the "
    status, data = refusal({"repositories": ["models", "nope"]})
    assert (status, data["message"]) == (422, outside + "parent installation.")
    assert "errors" not in data  # GitHub's answer here is a bare message
    assert refusal({"repository_ids": [123456789]})[1]["message"].startswith(outside)
    assert refusal({"repositories": [REPO]})[1]["message"].startswith(outside)  # names only
    not_granted = "The permissions requested are not granted to this installation."
    assert refusal({"permissions": {"administration": "read"}})[1]["message"] == not_granted
    assert refusal({"permissions": {"metadata": "write"}})[1]["message"] == not_granted
    assert refusal({"permissions": {"contents": "sudo"}})[1]["message"] == not_granted
    assert len(fake.tokens) == before

    # an empty list is no narrowing at all, as on GitHub: every repository of the installation
    wide = app.rest.apps.create_installation_access_token(inst.id, data={"repositories": []})
    assert wide.parsed_data.repository_selection == "all"
    both = app.rest.apps.create_installation_access_token(
        inst.id, repositories=["models"], repository_ids=[fake.repo("acme/other").id]
    ).parsed_data
    assert sorted(r.full_name for r in both.repositories or []) == ["acme/models", "acme/other"]


def test_narrowed_permissions_are_enforced_on_rest_and_git(
    fake: FakeGitHub, inst: Installation, tmp_path: Path
) -> None:
    app = app_client(fake)
    response = app.rest.apps.create_installation_access_token(
        inst.id, repositories=["models"], permissions={"metadata": "read"}
    )
    assert response.json()["permissions"] == {"metadata": "read"}  # echoed as granted
    data = response.parsed_data
    client = token_client(fake, data.token)
    assert client.rest.repos.get("acme", "models").status_code == 200
    with pytest.raises(RequestFailed) as info:
        client.rest.repos.get_commit("acme", "models", "main")
    assert info.value.response.status_code == 403
    assert info.value.response.json()["message"] == "Resource not accessible by integration"
    # metadata alone does not clone
    cloned = git("clone", fake.clone_url(REPO), "m", cwd=tmp_path, token=data.token, check=False)
    assert cloned.returncode != 0
    assert fake.requests_to("GET", r"/info/refs$")[-1].status == 403
    assert not (tmp_path / "m" / "requirements.in").exists()


def test_installation_repositories_paginate(fake: FakeGitHub) -> None:
    inst = fake.create_installation("acme")
    for i in range(5):
        fake.create_repo(f"acme/repo-{i}", files={"README.md": f"{i}\n"}, installation=inst)
    github = install_client(fake, inst)

    first = github.rest.apps.list_repos_accessible_to_installation(per_page=2)
    assert first.parsed_data.total_count == 5
    assert len(first.parsed_data.repositories) == 2
    link = first.headers["link"]
    assert 'rel="next"' in link
    assert 'rel="last"' in link
    assert "page=3" in link
    assert link.startswith(f"<{fake.api_url}/installation/repositories?")

    names = [
        repo.full_name
        for repo in github.rest.paginate(
            github.rest.apps.list_repos_accessible_to_installation,
            map_func=lambda r: r.parsed_data.repositories,
            per_page=2,
        )
    ]
    assert names == [f"acme/repo-{i}" for i in range(5)]


# -- pull requests, comments, labels, reviewers -------------------------------------------------


def test_pull_request_lifecycle(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    fake.push_files(
        REPO, {"requirements.txt": "torch==2.4.0\n"}, branch="lockwarden/main", message="Refresh"
    )

    created = github.rest.pulls.create(
        "acme",
        "models",
        title="Refresh locks",
        head="lockwarden/main",
        base="main",
        body="Report",
        draft=True,
    )
    assert created.status_code == 201
    pr = created.parsed_data
    assert (pr.number, pr.state, pr.draft, pr.merged) == (1, "open", True, False)
    assert pr.user.login == fake.bot_login
    assert pr.user.type == "Bot"
    assert pr.head.ref == "lockwarden/main"
    assert pr.head.label == "acme:lockwarden/main"
    assert pr.head.sha == fake.branches(REPO)["lockwarden/main"]
    assert pr.base.sha == fake.branches(REPO)["main"]
    assert (pr.commits, pr.changed_files, pr.additions, pr.deletions) == (1, 1, 1, 1)
    assert pr.html_url == f"{fake.git_url}/{REPO}/pull/1"

    with pytest.raises(RequestFailed) as info:
        github.rest.pulls.create(
            "acme", "models", title="again", head="lockwarden/main", base="main"
        )
    assert info.value.response.status_code == 422
    assert info.value.response.json()["errors"][0]["message"] == (
        "A pull request already exists for acme:lockwarden/main."
    )
    create = github.rest.pulls.create
    assert status_of(create, "acme", "models", title="x", head="nope", base="main") == 422

    found = github.rest.pulls.list(
        "acme", "models", state="open", head="acme:lockwarden/main", base="main"
    )
    assert [p.number for p in found.parsed_data] == [1]
    assert github.rest.pulls.list("acme", "models", head="acme:other").parsed_data == []
    assert github.rest.pulls.list("acme", "models", state="closed").parsed_data == []

    updated = github.rest.pulls.update(
        "acme", "models", 1, title="Refresh locks (2)", body="New report"
    )
    assert (updated.parsed_data.title, updated.parsed_data.body) == (
        "Refresh locks (2)",
        "New report",
    )
    with pytest.raises(RequestFailed) as info:
        github.rest.pulls.update("acme", "models", 1, body="x" * 65537)
    assert info.value.response.status_code == 422
    assert "is too long (maximum is 65536 characters)" in info.value.response.text
    assert github.rest.pulls.update("acme", "models", 1, body="x" * 65536).status_code == 200

    labels = github.rest.issues.add_labels(
        "acme", "models", 1, labels=["dependencies", "lockwarden"]
    )
    parsed_labels: list[Any] = labels.parsed_data  # (mypy misreads githubkit's list[Label])
    assert [label.name for label in parsed_labels] == ["dependencies", "lockwarden"]
    assert fake.pull(REPO, 1).labels == ["dependencies", "lockwarden"]

    fake.set_permission(REPO, "bob", "write")
    reviewers = github.rest.pulls.request_reviewers("acme", "models", 1, reviewers=["bob"])
    assert reviewers.status_code == 201
    assert [u.login for u in reviewers.parsed_data.requested_reviewers or []] == ["bob"]
    request = github.rest.pulls.request_reviewers
    assert status_of(request, "acme", "models", 1, reviewers=["mallory"]) == 422
    assert fake.pull(REPO, 1).requested_reviewers == ["bob"]

    # A human pushes to the branch: the pull request follows it.
    new_head = fake.push_files(REPO, {"extra.txt": "x\n"}, branch="lockwarden/main")
    assert github.rest.pulls.get("acme", "models", 1).parsed_data.head.sha == new_head

    closed = github.rest.pulls.update("acme", "models", 1, state="closed").parsed_data
    assert (closed.state, closed.merged) == ("closed", False)
    assert github.rest.pulls.update("acme", "models", 1, state="open").parsed_data.state == "open"
    assert fake.pull(REPO, 1).history[-1] == {"state": "open"}


def test_comments_reactions_and_pagination(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    fake.push_files(REPO, {"a.txt": "a\n"}, branch="topic")
    fake.open_pull(REPO, head="topic", title="Topic", user="alice")

    human = fake.add_comment(REPO, 1, "/lockwarden refresh", user="alice")
    for i in range(4):
        made = github.rest.issues.create_comment("acme", "models", 1, body=f"report {i}")
        assert made.status_code == 201
        assert made.parsed_data.performed_via_github_app is not None
    with pytest.raises(RequestFailed) as info:
        github.rest.issues.create_comment("acme", "models", 1, body="y" * 70000)
    assert info.value.response.status_code == 422

    page = github.rest.issues.list_comments("acme", "models", 1, per_page=2)
    assert len(page.parsed_data) == 2
    assert 'rel="next"' in page.headers["link"]
    comments: Any = github.rest.paginate(
        github.rest.issues.list_comments,
        owner="acme",
        repo="models",
        issue_number=1,
        per_page=2,
    )
    bodies = [c.body for c in comments]
    assert bodies == ["/lockwarden refresh", "report 0", "report 1", "report 2", "report 3"]

    mine = fake.comments(REPO, 1)[1]
    edited = github.rest.issues.update_comment("acme", "models", mine.id, body="report 0 (edited)")
    assert edited.parsed_data.body == "report 0 (edited)"
    assert fake.comments(REPO, 1)[1].edits == ["report 0"]

    for content in ("eyes", "rocket"):
        reaction = github.rest.reactions.create_for_issue_comment(
            "acme", "models", human.id, content=content
        )
        assert reaction.status_code == 201
        assert reaction.parsed_data.user is not None
        assert reaction.parsed_data.user.login == fake.bot_login
    again = github.rest.reactions.create_for_issue_comment(
        "acme", "models", human.id, content="eyes"
    )
    assert again.status_code == 200
    assert [r.content for r in human.reactions] == ["eyes", "rocket"]
    token = fake.issue_token(inst).token
    bogus = httpx.post(
        f"{fake.api_url}/repos/{REPO}/issues/comments/{human.id}/reactions",
        json={"content": "boo"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bogus.status_code == 422
    rollup = github.rest.issues.get_comment("acme", "models", human.id).parsed_data.reactions
    assert getattr(rollup, "total_count", None) == 2


def test_plain_issues_share_the_numbering_and_take_comments(
    fake: FakeGitHub, inst: Installation
) -> None:
    github = install_client(fake, inst)
    issue = fake.create_issue(REPO, "Pin torch", "Please pin it.", user="bob")
    fake.push_files(REPO, {"a.txt": "a\n"}, branch="topic")
    pr = fake.open_pull(REPO, head="topic", title="Topic")
    later = fake.create_issue(REPO, "No body")
    assert (issue.number, pr.number, later.number) == (1, 2, 3)  # one sequence
    assert fake.issue(REPO, 1) is issue
    assert (issue.state, issue.user, issue.labels, later.body) == ("open", "bob", [], None)
    with pytest.raises(KeyError):
        fake.issue(REPO, 2)  # a pull request
    with pytest.raises(KeyError):
        fake.pull(REPO, 1)  # a plain issue
    with pytest.raises(KeyError):
        fake.add_comment(REPO, 4, "nothing there")

    human = fake.add_comment(REPO, 1, "/lockwarden explain torch", user="bob")
    assert human.number == 1
    made = github.rest.issues.create_comment("acme", "models", 1, body="torch is pinned by x")
    assert made.status_code == 201
    assert made.parsed_data.performed_via_github_app is not None
    assert made.parsed_data.html_url.startswith(f"{fake.git_url}/{REPO}/issues/1#issuecomment-")
    assert made.parsed_data.issue_url == f"{fake.api_url}/repos/{REPO}/issues/1"
    assert [c.body for c in fake.comments(REPO, 1)] == [
        "/lockwarden explain torch",
        "torch is pinned by x",
    ]
    assert fake.comments(REPO, 2) == []
    listed: list[Any] = github.rest.issues.list_comments("acme", "models", 1).parsed_data
    assert [c.id for c in listed] == [human.id, made.parsed_data.id]

    reaction = github.rest.reactions.create_for_issue_comment(
        "acme", "models", human.id, content="eyes"
    )
    assert reaction.status_code == 201
    assert [r.content for r in human.reactions] == ["eyes"]
    listed_reactions = github.rest.reactions.list_for_issue_comment("acme", "models", human.id)
    assert [r.content for r in listed_reactions.parsed_data] == ["eyes"]

    got = github.rest.issues.get("acme", "models", 1)
    raw = got.json()
    assert "pull_request" not in raw
    assert (raw["number"], raw["title"], raw["body"], raw["comments"]) == (
        1,
        "Pin torch",
        "Please pin it.",
        2,
    )
    assert raw["html_url"] == f"{fake.git_url}/{REPO}/issues/1"
    assert got.parsed_data.user is not None
    assert got.parsed_data.user.login == "bob"
    assert "pull_request" in github.rest.issues.get("acme", "models", 2).json()
    assert status_of(github.rest.issues.get, "acme", "models", 4) == 404
    assert status_of(github.rest.pulls.get, "acme", "models", 1) == 404
    assert status_of(github.rest.pulls.get, "acme", "models", 3) == 404

    labels: list[Any] = github.rest.issues.add_labels(
        "acme", "models", 1, labels=["question"]
    ).parsed_data
    assert [label.name for label in labels] == ["question"]
    assert fake.issue(REPO, 1).labels == ["question"]
    assert github.rest.repos.get("acme", "models").parsed_data.open_issues_count == 3

    # Plain issues take the issues permission; pull_requests alone covers pull requests only.
    narrowed = fake.issue_token(inst, permissions={"metadata": "read", "pull_requests": "write"})
    limited = token_client(fake, narrowed.token)
    assert status_of(limited.rest.issues.create_comment, "acme", "models", 1, body="x") == 403
    assert status_of(limited.rest.issues.get_comment, "acme", "models", human.id) == 403
    assert limited.rest.issues.create_comment("acme", "models", 2, body="x").status_code == 201


def test_merge_squash_and_branch_deletion(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    fake.push_files(REPO, {"requirements.txt": "torch==2.4.0\n"}, branch="a")
    fake.push_files(REPO, {"b.txt": "b\n"}, branch="b")
    fake.push_files(REPO, {"main.txt": "moved on\n"})
    github.rest.pulls.create("acme", "models", title="A", head="a", base="main")
    github.rest.pulls.create("acme", "models", title="B", head="b", base="main")

    sha = fake.merge_pull(REPO, 1)
    log = fake.log(REPO)
    assert log[0].sha == sha
    assert len(log[0].parents) == 2
    assert log[0].subject == "Merge pull request #1 from acme/a"
    assert fake.read_file(REPO, "requirements.txt") == "torch==2.4.0\n"
    merged = github.rest.pulls.get("acme", "models", 1).parsed_data
    assert (merged.state, merged.merged) == ("closed", True)
    assert fake.pull(REPO, 1).merge_commit_sha == sha  # not in githubkit's 2026-03-10 model
    assert merged.merged_by is not None
    assert merged.merged_by.login == "alice"

    assert status_of(github.rest.pulls.merge, "acme", "models", 2, sha="0" * 40) == 409
    result = github.rest.pulls.merge("acme", "models", 2, merge_method="squash").parsed_data
    assert result.merged
    assert fake.log(REPO)[0].subject == "B (#2)"
    assert len(fake.log(REPO)[0].parents) == 1

    fake.push_files(REPO, {"c.txt": "c\n"}, branch="c")
    github.rest.pulls.create("acme", "models", title="C", head="c", base="main")
    assert github.rest.git.delete_ref("acme", "models", "heads/c").status_code == 204
    assert "c" not in fake.branches(REPO)
    assert fake.pull(REPO, 3).state == "closed"
    assert status_of(github.rest.git.delete_ref, "acme", "models", "heads/c") == 422


def test_contents_branches_refs_and_permissions(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    content = github.rest.repos.get_content(
        "acme", "models", "requirements.txt", ref="main"
    ).parsed_data
    assert isinstance(content, ContentFile)
    assert base64.b64decode(content.content).decode() == FILES["requirements.txt"]
    listing = github.rest.repos.get_content("acme", "models", "src").parsed_data
    assert isinstance(listing, list)
    assert [e.name for e in listing] == ["train.py"]
    assert status_of(github.rest.repos.get_content, "acme", "models", "absent.txt") == 404

    branch = github.rest.repos.get_branch("acme", "models", "main").parsed_data
    assert branch.commit.sha == fake.branches(REPO)["main"]
    assert branch.commit.commit.message == "Initial commit"
    assert status_of(github.rest.repos.get_branch, "acme", "models", "nope") == 404
    ref = github.rest.git.get_ref("acme", "models", "heads/main").parsed_data
    assert ref.object_.sha == fake.branches(REPO)["main"]

    fake.set_permission(REPO, "mia", "maintain")
    fake.set_permission(REPO, "tom", "triage")
    expected = {
        "mia": ("write", "maintain"),
        "tom": ("read", "triage"),
        "zed": ("none", "none"),
        "acme": ("admin", "admin"),
    }
    for login, (permission, role) in expected.items():
        got = github.rest.repos.get_collaborator_permission_level(
            "acme", "models", login
        ).parsed_data
        assert (got.permission, got.role_name) == (permission, role), login


def test_check_runs(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    head = fake.push_files(REPO, {"a.txt": "a\n"}, branch="lockwarden/main")
    github.rest.pulls.create("acme", "models", title="Locks", head="lockwarden/main", base="main")
    notes = [
        {
            "path": "requirements.txt",
            "start_line": 1,
            "end_line": 1,
            "annotation_level": "warning",
            "message": f"n{i}",
        }
        for i in range(51)
    ]

    created = github.rest.checks.create(
        "acme",
        "models",
        name="Lockwarden",
        head_sha=head,
        status="in_progress",
        output=cast("Any", {"title": "Refreshing", "summary": "…", "annotations": notes[:50]}),
    )
    assert created.status_code == 201
    run = created.parsed_data
    assert (run.status, run.conclusion, run.output.annotations_count) == ("in_progress", None, 50)
    assert [p.number for p in run.pull_requests] == [1]
    assert run.app is not None
    assert run.app.id == fake.app_id

    # githubkit refuses 51 annotations before sending; the server refuses them too.
    token = fake.issue_token(inst).token
    too_many = httpx.patch(
        f"{fake.api_url}/repos/{REPO}/check-runs/{run.id}",
        json={"output": {"summary": "s", "annotations": notes}},
        headers={"Authorization": f"token {token}"},
    )
    assert too_many.status_code == 422
    create = github.rest.checks.create
    assert status_of(create, "acme", "models", name="x", head_sha="f" * 40) == 422

    done = github.rest.checks.update(
        "acme",
        "models",
        run.id,
        conclusion="failure",
        output={"title": "Failed", "summary": "x" * 100, "text": "log"},
    ).parsed_data
    assert (done.status, done.conclusion, done.completed_at is not None) == (
        "completed",
        "failure",
        True,
    )
    github.rest.checks.create("acme", "models", name="Other", head_sha=head, conclusion="success")

    listed = github.rest.checks.list_for_ref(
        "acme", "models", "lockwarden/main", check_name="Lockwarden"
    )
    assert [r.id for r in listed.parsed_data.check_runs] == [run.id]
    assert listed.parsed_data.total_count == 1
    assert github.rest.checks.list_for_ref("acme", "models", head).parsed_data.total_count == 2
    stored = fake.check_runs(REPO, name="Lockwarden")[0]
    assert (stored.title, stored.text, len(stored.annotations)) == ("Failed", "log", 50)
    assert len(stored.history) == 2


# -- faults, rate limits, caching --------------------------------------------------------------


def test_fault_502_once_then_ok(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    fake.fail_next("GET", r"/repos/acme/models$", status=502)
    assert github.rest.repos.get("acme", "models").parsed_data.name == "models"
    statuses = [r.status for r in fake.requests_to("GET", r"/repos/acme/models$")]
    assert statuses == [502, 200]


def test_secondary_rate_limit_with_retry_after(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    github.rest.repos.get("acme", "models")
    fake.fail_next("POST", r"/issues/\d+/comments$", status=403, headers={"Retry-After": "1"})
    fake.push_files(REPO, {"a": "a"}, branch="t")
    fake.open_pull(REPO, head="t", title="T")
    started = time.monotonic()
    github.rest.issues.create_comment("acme", "models", 1, body="hi")
    assert time.monotonic() - started >= 1
    assert [r.status for r in fake.requests_to("POST", r"/comments$")] == [403, 201]

    no_retry = install_client(fake, inst, auto_retry=False)
    fake.fail_next("*", r"/repos/acme/models$", status=429, headers={"Retry-After": "30"})
    with pytest.raises(SecondaryRateLimitExceeded) as info:
        no_retry.rest.repos.get("acme", "models")
    assert info.value.retry_after.total_seconds() == 30
    assert "secondary rate limit" in info.value.response.json()["message"]


def test_rate_limit_headers_and_exhaustion(fake: FakeGitHub, inst: Installation) -> None:
    token = fake.issue_token(inst).token
    headers = {"Authorization": f"token {token}"}
    first = httpx.get(f"{fake.api_url}/repos/{REPO}", headers=headers)
    second = httpx.get(f"{fake.api_url}/repos/{REPO}", headers=headers)
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert (
        int(first.headers["x-ratelimit-remaining"]) - int(second.headers["x-ratelimit-remaining"])
        == 1
    )
    assert second.headers["x-ratelimit-used"] == "2"
    assert second.headers["x-ratelimit-resource"] == "core"
    assert int(second.headers["x-ratelimit-reset"]) > time.time()

    missing = httpx.get(f"{fake.api_url}/no/such/route", headers=headers)
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")

    fake.rate_limit = 3
    refused = httpx.get(f"{fake.api_url}/repos/{REPO}", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_conditional_requests_see_changes(fake: FakeGitHub, inst: Installation) -> None:
    github = install_client(fake, inst)
    fake.push_files(REPO, {"a": "a"}, branch="t")
    fake.open_pull(REPO, head="t", title="Before")
    assert github.rest.pulls.get("acme", "models", 1).parsed_data.title == "Before"
    assert github.rest.pulls.get("acme", "models", 1).parsed_data.title == "Before"
    fake.pull(REPO, 1).title = "After"
    assert github.rest.pulls.get("acme", "models", 1).parsed_data.title == "After"
    assert 304 in [r.status for r in fake.requests_to("GET", r"/pulls/1$")]


# -- git smart HTTP ------------------------------------------------------------------------------


def git(
    *args: str, cwd: Path, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")} | {
        "HOME": str(cwd.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Lockwarden",
        "GIT_AUTHOR_EMAIL": "bot@example.com",
        "GIT_COMMITTER_NAME": "Lockwarden",
        "GIT_COMMITTER_EMAIL": "bot@example.com",
    }
    config = ["-c", "credential.helper=", "-c", "init.defaultBranch=main"]
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        config += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    return subprocess.run(
        ["git", *config, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def test_git_clone_push_and_fetch(fake: FakeGitHub, inst: Installation, tmp_path: Path) -> None:
    token = fake.issue_token(inst).token
    work = tmp_path / "work"
    git("clone", fake.clone_url(REPO), str(work), cwd=tmp_path, token=token)
    assert (work / "requirements.in").read_text() == "torch\n"

    (work / "requirements.txt").write_text("torch==2.4.0\n")
    (work / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # pushed with a chunked body
    git("checkout", "-b", "lockwarden/main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-m", "Refresh locks\n\nLockwarden-Run: 42", cwd=work)
    git("push", "origin", "lockwarden/main", cwd=work, token=token)

    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert fake.branches(REPO)["lockwarden/main"] == head
    assert fake.read_file(REPO, "requirements.txt", "lockwarden/main") == "torch==2.4.0\n"
    assert fake.log(REPO, "lockwarden/main")[0].trailers == {"Lockwarden-Run": ["42"]}
    push = fake.pushes[-1]
    assert (push.ref, push.before, push.after, push.installation_id) == (
        "refs/heads/lockwarden/main",
        ZERO_SHA,
        head,
        inst.id,
    )
    receive = fake.requests_to("POST", r"/git-receive-pack$")[-1]
    assert receive.auth == f"installation:{inst.id}"
    assert receive.headers.get("transfer-encoding") == "chunked"

    # A human moves main on; the bot fetches it and force-pushes a rebase.
    new_main = fake.push_files(REPO, {"README.md": "hello\n"}, message="Docs")
    git("fetch", "origin", cwd=work, token=token)
    assert git("rev-parse", "origin/main", cwd=work).stdout.strip() == new_main
    git("rebase", "origin/main", cwd=work)
    git("push", "--force", "origin", "lockwarden/main", cwd=work, token=token)
    assert fake.repo(REPO).git.is_ancestor(new_main, fake.branches(REPO)["lockwarden/main"])

    git("push", "origin", "--delete", "lockwarden/main", cwd=work, token=token)
    assert "lockwarden/main" not in fake.branches(REPO)
    assert fake.pushes[-1].after == ZERO_SHA


def test_git_requires_a_token_that_covers_the_repo(
    fake: FakeGitHub, inst: Installation, tmp_path: Path
) -> None:
    anonymous = git("clone", fake.clone_url(REPO), "a", cwd=tmp_path, check=False)
    assert anonymous.returncode != 0
    refused = fake.requests_to("GET", r"/info/refs$")[-1]
    assert refused.status == 401
    raw = httpx.get(f"{fake.clone_url(REPO)}/info/refs?service=git-upload-pack")
    assert raw.headers["WWW-Authenticate"] == 'Basic realm="GitHub"'

    fake.create_installation("globex")
    fake.create_repo("globex/vision", files={"a": "a"})
    foreign = fake.issue_token(fake.installation_for("globex/vision") or 0).token
    assert (
        git("clone", fake.clone_url(REPO), "b", cwd=tmp_path, token=foreign, check=False).returncode
        != 0
    )
    assert fake.requests_to("GET", r"/info/refs$")[-1].status == 404

    # Credentials in the URL: git sends them after the server's Basic challenge.
    token = fake.issue_token(inst).token
    url = fake.clone_url(REPO).replace("http://", f"http://x-access-token:{token}@")
    git("clone", url, "in-url", cwd=tmp_path)
    assert (tmp_path / "in-url" / "requirements.in").exists()

    expired = fake.issue_token(inst, lifetime_s=-1).token
    assert (
        git("clone", fake.clone_url(REPO), "c", cwd=tmp_path, token=expired, check=False).returncode
        != 0
    )

    read_only = fake.issue_token(inst, permissions={"contents": "read", "metadata": "read"}).token
    work = tmp_path / "d"
    git("clone", fake.clone_url(REPO), str(work), cwd=tmp_path, token=read_only)
    git("commit", "--allow-empty", "-m", "x", cwd=work)
    denied = git("push", "origin", "HEAD:refs/heads/x", cwd=work, token=read_only, check=False)
    assert denied.returncode != 0
    assert "x" not in fake.branches(REPO)


def test_git_gzip_request_body(fake: FakeGitHub, inst: Installation) -> None:
    token = fake.issue_token(inst).token
    request = b"0014command=ls-refs\n" + b"0001" + b"0000"
    response = httpx.post(
        f"{fake.clone_url(REPO)}/git-upload-pack",
        content=gzip.compress(request),
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"x-access-token:{token}".encode()).decode(),
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
            "Git-Protocol": "version=2",
        },
    )
    assert response.status_code == 200
    assert f"{fake.branches(REPO)['main']} refs/heads/main".encode() in response.content


# -- webhooks ------------------------------------------------------------------------------------


def test_webhook_signature_and_headers(fake: FakeGitHub) -> None:
    body = b'{"zen":"Keep it logically awesome."}'
    headers = fake.webhook_headers("ping", body)
    expected = "sha256=" + hmac.new(fake.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
    assert fake.sign(body) == expected
    assert not hmac.compare_digest(fake.sign(body + b" "), expected)
    assert headers["X-GitHub-Event"] == "ping"
    assert len(headers["X-GitHub-Delivery"]) == 36
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"
    assert fake.webhook_headers("ping", body, "abc")["X-GitHub-Delivery"] == "abc"


# githubkit's models of these payloads (``githubkit.webhooks.parse_obj`` picks the same ones, but
# imports every action's model first: seconds per event).
PAYLOAD_MODELS: dict[tuple[str, str | None], type[BaseModel]] = {
    ("installation", "created"): WebhookInstallationCreated,
    ("installation_repositories", "added"): WebhookInstallationRepositoriesAdded,
    ("push", None): WebhookPush,
    ("issue_comment", "created"): WebhookIssueCommentCreated,
    ("issue_comment", "edited"): WebhookIssueCommentEdited,
    ("check_run", "rerequested"): WebhookCheckRunRerequested,
    ("check_suite", "rerequested"): WebhookCheckSuiteRerequested,
    ("pull_request", "closed"): WebhookPullRequestClosed,
    ("pull_request", "converted_to_draft"): WebhookPullRequestConvertedToDraft,
    ("pull_request", "ready_for_review"): WebhookPullRequestReadyForReview,
}


def checked_payload(
    fake: FakeGitHub, event: str, action: str | None, **fields: Any
) -> dict[str, Any]:
    """``fake.payload(...)`` as delivered (encoded, then decoded), validated by githubkit."""
    payload = fake.payload(event, action, **fields)
    decoded: dict[str, Any] = json.loads(fake.encode(payload))
    PAYLOAD_MODELS[(event, action)].model_validate(decoded)  # every required field is there
    if action is not None:
        assert decoded["action"] == action
    return decoded


def open_bot_pull(fake: FakeGitHub) -> None:
    """Pull request #1 of ``REPO``, from ``lockwarden/main``, opened by the bot."""
    fake.push_files(REPO, {"x": "x"}, branch="lockwarden/main")
    fake.open_pull(REPO, head="lockwarden/main", title="Locks", user=fake.bot_login)


def test_installation_created_payload(fake: FakeGitHub, inst: Installation) -> None:
    created = checked_payload(fake, "installation", "created", installation=inst)
    assert created["installation"]["id"] == inst.id
    assert [r["full_name"] for r in created["repositories"]] == [REPO]


def test_installation_repositories_added_payload_adds_them(fake: FakeGitHub) -> None:
    selected = fake.create_installation("globex", repos=["globex/a"])
    fake.create_repo("globex/a", files={"a": "a"})
    fake.create_repo("globex/b", files={"b": "b"})
    added = checked_payload(
        fake, "installation_repositories", "added", installation=selected, repos=["globex/b"]
    )
    assert [r["full_name"] for r in added["repositories_added"]] == ["globex/b"]
    assert fake.installation_for("globex/b") is selected


def test_push_payload_lists_the_commits(fake: FakeGitHub, inst: Installation) -> None:
    before = fake.branches(REPO)["main"]
    fake.push_files(REPO, {"requirements.in": "torch\nnumpy\n", "new.txt": "n\n"}, message="One")
    fake.push_files(REPO, {"src/train.py": None}, message="Two")
    push = checked_payload(fake, "push", None, repo=REPO, before=before)
    assert (push["before"], push["after"]) == (before, fake.branches(REPO)["main"])
    assert push["ref"] == "refs/heads/main"
    assert [c["message"] for c in push["commits"]] == ["One", "Two"]
    assert push["commits"][0]["added"] == ["new.txt"]
    assert push["commits"][0]["modified"] == ["requirements.in"]
    assert push["commits"][1]["removed"] == ["src/train.py"]
    assert push["head_commit"]["id"] == push["after"]
    assert push["installation"]["id"] == inst.id
    assert push["repository"]["default_branch"] == "main"


def test_issue_comment_payloads_on_a_pull_request_post_and_edit_it(
    fake: FakeGitHub, inst: Installation
) -> None:
    open_bot_pull(fake)
    comment = checked_payload(
        fake,
        "issue_comment",
        "created",
        repo=REPO,
        number=1,
        body="/lockwarden refresh",
        user="bob",
    )
    assert comment["issue"]["pull_request"]["url"].endswith("/pulls/1")
    assert comment["comment"]["body"] == "/lockwarden refresh"
    assert comment["sender"]["login"] == "bob"
    edited = checked_payload(
        fake,
        "issue_comment",
        "edited",
        repo=REPO,
        comment_id=comment["comment"]["id"],
        body="/lockwarden skip",
    )
    assert edited["changes"] == {"body": {"from": "/lockwarden refresh"}}
    assert fake.comments(REPO, 1)[0].body == "/lockwarden skip"


def test_issue_comment_payloads_on_a_plain_issue_post_and_edit_it(
    fake: FakeGitHub, inst: Installation
) -> None:
    open_bot_pull(fake)
    issue = fake.create_issue(REPO, "Why is torch pinned?")
    assert issue.number == 2  # after pull request #1
    on_issue = checked_payload(
        fake,
        "issue_comment",
        "created",
        repo=REPO,
        number=2,
        body="/lockwarden explain",
        user="bob",
    )
    assert "pull_request" not in on_issue["issue"]
    assert (on_issue["issue"]["number"], on_issue["issue"]["title"]) == (2, issue.title)
    assert on_issue["issue"]["html_url"].endswith(f"/{REPO}/issues/2")
    assert on_issue["issue"]["comments"] == 1
    assert on_issue["comment"]["html_url"].endswith(
        f"/issues/2#issuecomment-{on_issue['comment']['id']}"
    )
    assert on_issue["sender"]["login"] == "bob"
    assert [c.body for c in fake.comments(REPO, 2)] == ["/lockwarden explain"]
    edited_on_issue = checked_payload(
        fake,
        "issue_comment",
        "edited",
        repo=REPO,
        comment_id=on_issue["comment"]["id"],
        body="/lockwarden explain torch",
    )
    assert "pull_request" not in edited_on_issue["issue"]
    assert edited_on_issue["changes"] == {"body": {"from": "/lockwarden explain"}}
    assert fake.comments(REPO, 2)[0].edits == ["/lockwarden explain"]


def test_issue_comment_payload_needs_an_existing_number(
    fake: FakeGitHub, inst: Installation
) -> None:
    with pytest.raises(KeyError):
        fake.payload("issue_comment", "created", repo=REPO, number=9, body="x")


def test_check_run_rerequested_payload_names_the_run_and_its_branch(
    fake: FakeGitHub, inst: Installation
) -> None:
    open_bot_pull(fake)
    github = install_client(fake, inst)
    run_id = github.rest.checks.create(
        "acme",
        "models",
        name="Lockwarden",
        head_sha=fake.branches(REPO)["lockwarden/main"],
        conclusion="failure",
    ).parsed_data.id
    rerun = checked_payload(fake, "check_run", "rerequested", repo=REPO, check_run_id=run_id)
    assert rerun["check_run"]["id"] == run_id
    assert rerun["check_run"]["check_suite"]["head_branch"] == "lockwarden/main"


def test_check_suite_rerequested_payload_names_the_suite_its_branch_and_pull_request(
    fake: FakeGitHub, inst: Installation
) -> None:
    open_bot_pull(fake)
    github = install_client(fake, inst)
    head = fake.branches(REPO)["lockwarden/main"]
    runs = [
        github.rest.checks.create(
            "acme", "models", name="Lockwarden", head_sha=head, conclusion="failure"
        ).parsed_data,
        github.rest.checks.create(
            "acme", "models", name="lint", head_sha=head, conclusion="success"
        ).parsed_data,
    ]
    rerun = checked_payload(fake, "check_suite", "rerequested", repo=REPO, head_sha=head)
    suite = rerun["check_suite"]
    assert [r.check_suite.id if r.check_suite else None for r in runs] == [suite["id"]] * 2
    assert (suite["head_branch"], suite["head_sha"]) == ("lockwarden/main", head)
    assert (suite["status"], suite["conclusion"]) == ("completed", "failure")
    assert suite["latest_check_runs_count"] == 2
    assert suite["app"]["slug"] == fake.app_slug
    assert [p["number"] for p in suite["pull_requests"]] == [1]
    assert suite["head_commit"]["id"] == head
    # Once the branch moves on, the old commit's suite has no head branch.
    fake.push_files(REPO, {"y": "y"}, branch="lockwarden/main")
    moved = checked_payload(fake, "check_suite", "rerequested", repo=REPO, head_sha=head)
    assert moved["check_suite"]["head_branch"] is None
    with pytest.raises(ValueError, match="no check suite"):
        fake.payload("check_suite", "rerequested", repo=REPO, head_sha="0" * 40)


def test_pull_request_closed_payloads_merge_or_close_it(
    fake: FakeGitHub, inst: Installation
) -> None:
    open_bot_pull(fake)
    fake.create_issue(REPO, "Why is torch pinned?")
    closed = checked_payload(
        fake, "pull_request", "closed", repo=REPO, number=1, merged=True, sender="bob"
    )
    assert closed["pull_request"]["merged"] is True
    assert fake.pull(REPO, 1).merged_by == "bob"
    fake.push_files(REPO, {"y": "y"}, branch="other")
    assert fake.open_pull(REPO, head="other", title="Other").number == 3  # after issue #2
    unmerged = checked_payload(fake, "pull_request", "closed", repo=REPO, number=3)
    assert (unmerged["pull_request"]["state"], unmerged["pull_request"]["merged"]) == (
        "closed",
        False,
    )


def test_pull_request_draft_payloads_switch_it(fake: FakeGitHub, inst: Installation) -> None:
    open_bot_pull(fake)
    drafted = checked_payload(
        fake, "pull_request", "converted_to_draft", repo=REPO, number=1, sender="bob"
    )
    assert drafted["pull_request"]["draft"] is True
    assert drafted["sender"]["login"] == "bob"
    assert fake.pull(REPO, 1).draft is True
    ready = checked_payload(fake, "pull_request", "ready_for_review", repo=REPO, number=1)
    assert ready["pull_request"]["draft"] is False
    assert fake.pull(REPO, 1).draft is False


def test_an_event_without_a_builder_has_no_payload(fake: FakeGitHub) -> None:
    with pytest.raises(ValueError, match="no payload builder"):
        fake.payload("star", "created")


def test_deliver_posts_signed_payloads(fake: FakeGitHub, inst: Installation) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
        response = fake.deliver(url, "push", fake.payload("push", repo=REPO))
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 202
    headers, body = received[0]
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], fake.sign(body))
    assert fake.deliveries[-1].event == "push"
    assert fake.deliveries[-1].status == 202
    with pytest.raises(ValueError, match="loopback"):
        fake.deliver("http://192.0.2.1/hook", "push", {})


# -- the App's webhook deliveries -------------------------------------------------------------


class _Receiver:
    """A webhook receiver on 127.0.0.1 answering the given statuses in turn (then 202)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers.items()), body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    served = _Receiver()
    yield served
    served.close()


def test_deliveries_are_listed_newest_first_in_cursor_pages(
    fake: FakeGitHub, inst: Installation, receiver: _Receiver
) -> None:
    receiver.statuses = [503, 202, 500]
    for _ in range(3):
        fake.deliver(receiver.url, "push", fake.payload("push", repo=REPO))
    first, second, third = fake.deliveries
    gh = app_client(fake)

    page = gh.rest.apps.list_webhook_deliveries(per_page=2)
    assert [d.id for d in page.parsed_data] == [third.id, second.id]
    assert [(d.status, d.status_code) for d in page.parsed_data] == [
        ("Invalid HTTP Response: 500", 500),
        ("OK", 202),
    ]
    item = page.parsed_data[0]
    assert (item.guid, item.event, item.action, item.redelivery) == (
        third.guid,
        "push",
        None,
        False,
    )
    assert item.installation_id == inst.id
    assert item.repository_id == fake.repo(REPO).id
    link = page.headers["link"]
    assert link.endswith('>; rel="next"')
    assert f"cursor=v1_{second.id}" in link

    rest = gh.rest.apps.list_webhook_deliveries(per_page=2, cursor=f"v1_{second.id}")
    assert [d.id for d in rest.parsed_data] == [first.id]
    assert "link" not in rest.headers
    failed = gh.rest.apps.list_webhook_deliveries(status="failure").parsed_data
    assert [d.id for d in failed] == [third.id, first.id]
    assert len(gh.rest.apps.list_webhook_deliveries().parsed_data) == 3


def test_a_delivery_shows_its_request_and_response(
    fake: FakeGitHub, inst: Installation, receiver: _Receiver
) -> None:
    payload = fake.payload("push", repo=REPO)
    fake.deliver(receiver.url, "push", payload)
    delivery = fake.deliveries[-1]
    gh = app_client(fake)
    found = gh.rest.apps.get_webhook_delivery(delivery.id).parsed_data
    assert (found.guid, found.url, found.status_code) == (delivery.guid, receiver.url, 202)
    assert found.request.headers is not None
    assert found.request.payload is not None
    assert found.request.headers.model_dump()["X-GitHub-Delivery"] == delivery.guid
    assert found.request.payload.model_dump()["after"] == payload["after"]
    with pytest.raises(RequestFailed) as missing:
        gh.rest.apps.get_webhook_delivery(1)
    assert missing.value.response.status_code == 404


def test_an_attempt_resends_the_delivery_under_the_same_guid(
    fake: FakeGitHub, inst: Installation, receiver: _Receiver
) -> None:
    receiver.statuses = [503]
    fake.deliver(receiver.url, "push", fake.payload("push", repo=REPO))
    original = fake.deliveries[-1]
    assert original.status_text == "Invalid HTTP Response: 503"

    gh = app_client(fake)
    answer = gh.rest.apps.redeliver_webhook_delivery(original.id)

    assert answer.status_code == 202
    again = fake.deliveries[-1]
    assert (again.guid, again.redelivery, again.status, again.status_text) == (
        original.guid,
        True,
        202,
        "OK",
    )
    assert again.id > original.id
    (first_headers, first_body), (headers, body) = receiver.received
    assert body == first_body
    assert headers["X-GitHub-Delivery"] == first_headers["X-GitHub-Delivery"] == original.guid
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], fake.sign(body))
    installation_client = token_client(fake, fake.issue_token(inst).token)
    with pytest.raises(RequestFailed) as refused:
        installation_client.rest.apps.redeliver_webhook_delivery(original.id)
    assert refused.value.response.status_code == 401
    with pytest.raises(RequestFailed) as missing:
        gh.rest.apps.redeliver_webhook_delivery(1)
    assert missing.value.response.status_code == 404


def test_an_unreachable_receiver_is_a_failed_delivery(fake: FakeGitHub, inst: Installation) -> None:
    closed = _Receiver()
    closed.close()
    with pytest.raises(httpx.ConnectError):
        fake.deliver(closed.url, "push", fake.payload("push", repo=REPO))
    failed = fake.deliveries[-1]
    assert (failed.status, failed.status_text) == (0, "failed to connect to host")
