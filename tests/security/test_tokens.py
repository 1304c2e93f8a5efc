"""Least privilege for installation tokens: every token a job gets reaches only the job's
repository with the permissions of what the job does, GitHub (the fake, behaving as GitHub)
refuses anything wider, and no token is left where repository code could read it."""

from __future__ import annotations

import base64
import itertools
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit.exception import RequestFailed
from pydantic import SecretStr

from bot import git
from bot.git import GitError
from bot.github.client import AppCredentials, GitHubApp, GitHubError, TokenScope
from bot.github.scopes import (
    CHECK_RUN_ONLY,
    COMMAND_HANDLING,
    PUBLISH_PULL_REQUEST,
)
from bot.jobs import runner as job_runner
from bot.jobs.branches import REFRESH_BRANCH
from bot.jobs.queue import JobRequest
from bot.jobs.runner import JobRunner
from bot.pipeline.checkout import Workspace
from bot.results import RunResult
from bot.settings import Settings
from tests.jobs.test_runner import lock_result, pipeline_result
from tests.support.fake_github import FakeGitHub, Installation, Token

# What the installation grants beyond what any job needs: no job's token may carry it.
EXTRA = {"administration": "write", "workflows": "write", "members": "read", "actions": "write"}
NOT_IN_INSTALLATION = (
    "There is at least one repository that does not exist or is not accessible to the parent "
    "installation."
)
NOT_GRANTED = "The permissions requested are not granted to this installation."
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake(module_fake: FakeGitHub) -> FakeGitHub:
    """The module's tests share one fake GitHub, each in repositories of its own."""
    return module_fake


@pytest.fixture(scope="module")
def installation(fake: FakeGitHub) -> Installation:
    grants = {
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "checks": "write",
        "metadata": "read",
        **EXTRA,
    }
    return fake.create_installation("acme", permissions=grants)


@pytest.fixture(scope="module")
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(AppCredentials(fake.app_id, fake.private_key_pem, fake.api_url))


@pytest.fixture(scope="module")
def runner(fake: FakeGitHub, app: GitHubApp, tmp_path_factory: pytest.TempPathFactory) -> JobRunner:
    settings = Settings(
        app_id=fake.app_id,
        private_key=SecretStr(fake.private_key_pem),
        github_api_url=fake.api_url,
        cache_dir=tmp_path_factory.mktemp("cache"),
        builder="none",
    )
    return JobRunner(app, settings, git_base_url=fake.git_url)


def new_repo(fake: FakeGitHub, installation: Installation, files: dict[str, str]) -> str:
    name = f"acme/svc-{next(_names)}"
    fake.create_repo(name, files=files, installation=installation)
    return name


def minted_since(fake: FakeGitHub, before: set[str]) -> list[Token]:
    with fake.lock:
        return [token for value, token in fake.tokens.items() if value not in before]


def token_values(fake: FakeGitHub) -> set[str]:
    with fake.lock:
        return set(fake.tokens)


def basic(token: str) -> dict[str, str]:
    encoded = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def secrets_of(values: set[str]) -> list[bytes]:
    """Each token as it could be written down: itself and its Basic header form."""
    found: list[bytes] = []
    for value in values:
        found += [value.encode(), base64.b64encode(f"x-access-token:{value}".encode())]
    return found


def files_holding(root: Path, secrets: list[bytes]) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and any(secret in path.read_bytes() for secret in secrets)
    ]


class HostileCompile:
    """Stands in for the compile of the repository's code, which could be hostile: it looks
    for every token minted so far where that code could (the clone, ``.git`` included, and
    its process environment), then returns an ordinary result."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.in_files: list[str] = []
        self.in_environment: list[str] = []

    def __call__(self, workspace: Workspace, *_: Any, **__: Any) -> RunResult:
        secrets = secrets_of(token_values(self.fake))
        self.in_files = files_holding(workspace.root, secrets)
        self.in_environment = [
            name for name, value in os.environ.items() if any(s.decode() in value for s in secrets)
        ]
        return pipeline_result(workspace, lock_result())


def test_a_refresh_jobs_token_cannot_read_or_push_another_repository_of_the_installation(
    fake: FakeGitHub,
    installation: Installation,
    runner: JobRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = new_repo(fake, installation, {"requirements/serve.in": "numpy\n"})
    theirs = new_repo(fake, installation, {"SECRET.md": "the other team's plans\n"})
    their_branches = fake.branches(theirs)
    compile_ = HostileCompile(fake)
    monkeypatch.setattr(job_runner, "refresh", compile_)
    before = token_values(fake)

    outcome = runner.run(JobRequest("refresh", mine, installation.id, "d-refresh"))

    assert (outcome.kind, outcome.action) == ("refresh", "opened")
    assert REFRESH_BRANCH in fake.branches(mine)
    tokens = minted_since(fake, before)
    assert tokens, "the job made its own token"
    for token in tokens:
        assert token.repositories == [mine]
        assert token.permissions == PUBLISH_PULL_REQUEST.as_dict()
        headers = {"Authorization": f"token {token.token}"}
        # REST: the other repository does not exist for this token, as on GitHub
        other = httpx.get(f"{fake.api_url}/repos/{theirs}/contents/SECRET.md", headers=headers)
        assert (other.status_code, other.json()["message"]) == (404, "Not Found")
        assert httpx.get(f"{fake.api_url}/repos/{mine}", headers=headers).status_code == 200
        # git: neither fetch nor push reaches it
        for service in ("git-upload-pack", "git-receive-pack"):
            refs = httpx.get(
                f"{fake.clone_url(theirs)}/info/refs?service={service}", headers=basic(token.token)
            )
            assert refs.status_code == 404
            assert "their plans" not in refs.text
    # the repository's code saw none of the job's tokens
    assert compile_.in_files == []
    assert compile_.in_environment == []
    assert fake.branches(theirs) == their_branches


def test_a_refresh_token_cannot_clone_another_repository_through_the_git_helpers(
    fake: FakeGitHub, installation: Installation, app: GitHubApp, tmp_path: Path
) -> None:
    mine = new_repo(fake, installation, {"README.md": "mine\n"})
    theirs = new_repo(fake, installation, {"SECRET.md": "theirs\n"})
    scope = TokenScope(installation.id, mine, PUBLISH_PULL_REQUEST)

    with pytest.raises(GitError) as refused:
        git.clone(
            fake.clone_url(theirs), tmp_path / "theirs", token=lambda: app.installation_token(scope)
        )

    assert "not found" in refused.value.user_message
    assert not (tmp_path / "theirs" / "SECRET.md").exists()


def test_a_command_jobs_token_lacks_the_permissions_commands_do_not_need(
    fake: FakeGitHub, installation: Installation, runner: JobRunner
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    fake.set_permission(repo, "alice", "write")
    issue = fake.create_issue(repo, "How do I pin?")
    comment = fake.add_comment(repo, issue.number, "/lockwarden help", user="alice")
    before = token_values(fake)
    asked = len(fake.requests_to("POST", r"/access_tokens$"))

    outcome = runner.run(
        JobRequest(
            "command",
            repo,
            installation.id,
            "d-command",
            {
                "comment_id": comment.id,
                "issue_number": issue.number,
                "body": comment.body,
                "author": "alice",
                "is_pull_request": False,
            },
        )
    )

    assert outcome.action == "done"
    [token] = minted_since(fake, before)
    assert token.repositories == [repo]
    assert token.permissions == COMMAND_HANDLING.as_dict()
    assert not set(EXTRA) & set(token.permissions)
    [request] = fake.requests_to("POST", r"/access_tokens$")[asked:]
    assert request.json() == {
        "permissions": COMMAND_HANDLING.as_dict(),
        "repositories": [repo.split("/")[1]],
    }


def test_a_write_beyond_the_tokens_permissions_is_refused_and_changes_nothing(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    repo = new_repo(fake, installation, {"README.md": "hi\n"})
    issue = fake.create_issue(repo, "A plain issue")
    # a refresh publishes a pull request: it has no business commenting on plain issues
    publish = app.installation_token(TokenScope(installation.id, repo, PUBLISH_PULL_REQUEST))
    checks = app.installation_token(TokenScope(installation.id, repo, CHECK_RUN_ONLY))

    comment = httpx.post(
        f"{fake.api_url}/repos/{repo}/issues/{issue.number}/comments",
        headers={"Authorization": f"token {publish}"},
        json={"body": "hi"},
    )
    push = httpx.get(
        f"{fake.clone_url(repo)}/info/refs?service=git-receive-pack", headers=basic(checks)
    )

    assert comment.status_code == 403
    assert comment.json()["message"] == "Resource not accessible by integration"
    assert push.status_code == 403
    assert fake.comments(repo, issue.number) == []
    assert list(fake.branches(repo)) == ["main"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"repositories": ["svc-of-initech"]}, NOT_IN_INSTALLATION, id="other-account"),
        pytest.param({"repositories": ["acme/svc-1"]}, NOT_IN_INSTALLATION, id="full-name"),
        pytest.param({"repository_ids": [987654321]}, NOT_IN_INSTALLATION, id="unknown-id"),
        pytest.param({"permissions": {"secrets": "read"}}, NOT_GRANTED, id="not-granted"),
        pytest.param({"permissions": {"metadata": "write"}}, NOT_GRANTED, id="above-grant"),
        pytest.param({"permissions": {"contents": "owner"}}, NOT_GRANTED, id="unknown-level"),
    ],
)
def test_the_fake_refuses_a_token_wider_than_the_installation_as_github_does(
    fake: FakeGitHub,
    installation: Installation,
    app: GitHubApp,
    body: dict[str, Any],
    message: str,
) -> None:
    if not fake.find_repo("initech", "svc-of-initech"):
        initech = fake.create_installation("initech")
        fake.create_repo("initech/svc-of-initech", files={"a": "a"}, installation=initech)
    before = token_values(fake)

    client = app.app_client()  # signed with the App's JWT
    with pytest.raises(RequestFailed) as refused:
        client.request("POST", f"/app/installations/{installation.id}/access_tokens", json=body)
    response = refused.value.response

    assert response.status_code == 422
    data = response.json()
    assert data["message"] == message
    assert "create-an-installation-access-token-for-an-app" in data["documentation_url"]
    assert token_values(fake) == before


def test_the_token_cache_never_hands_one_scopes_token_to_another(
    fake: FakeGitHub, installation: Installation, app: GitHubApp
) -> None:
    first = new_repo(fake, installation, {"a": "a"})
    second = new_repo(fake, installation, {"b": "b"})

    tokens = {
        (repo, access.purpose): app.installation_token(TokenScope(installation.id, repo, access))
        for repo in (first, second)
        for access in (PUBLISH_PULL_REQUEST, CHECK_RUN_ONLY)
    }

    assert len(set(tokens.values())) == 4
    for (repo, _), value in tokens.items():
        token = fake.valid_token(value)
        assert token is not None
        assert token.repositories == [repo]
    with pytest.raises(GitHubError, match="is not OWNER/NAME"):
        app.installation_token(TokenScope(installation.id, "", PUBLISH_PULL_REQUEST))


def test_the_clone_holds_no_token_after_checkout(
    fake: FakeGitHub, installation: Installation, runner: JobRunner, tmp_path: Path
) -> None:
    repo = new_repo(fake, installation, {"requirements/serve.in": "numpy\n"})
    job = JobRequest("refresh", repo, installation.id, "d-clone")

    clone = runner.clone(job, tmp_path)
    git.fetch_branch(clone, "main", token=runner.token(job))

    secrets = secrets_of(token_values(fake))
    assert files_holding(clone.path, secrets) == []
    config = (clone.path / ".git" / "config").read_text()
    assert f"url = {fake.git_url}/{repo}.git" in config
    assert "@" not in config.split("url = ", 1)[1].splitlines()[0]
    assert "extraheader" not in config.lower()


def test_git_commands_do_not_inherit_the_workers_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKWARDEN_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----")
    monkeypatch.setenv("LOCKWARDEN_PRIVATE_KEY_PATH", "/run/secrets/app.pem")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_leaked")
    monkeypatch.setenv("LANG", "C.UTF-8")

    env = git._env(tmp_path, "Authorization: Basic abc")

    assert env["LOCKWARDEN_PRIVATE_KEY"] == ""
    assert env["LOCKWARDEN_PRIVATE_KEY_PATH"] == ""
    assert env["GITHUB_TOKEN"] == ""
    assert "LANG" not in env  # the rest of the environment is left to git as it is
    # the job's token is the one secret, as git configuration for this command only
    assert "Authorization: Basic abc" in env.values()
