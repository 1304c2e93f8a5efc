"""The fake GitHub: state, the Python-side operations tests use, and its one HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.fake_github import _webhooks
from tests.support.fake_github._errors import ApiError, check_body_length, validation_failed
from tests.support.fake_github._git import BareRepo, CommitInfo, Person
from tests.support.fake_github._render import Renderer
from tests.support.fake_github._server import Connection, start_server
from tests.support.fake_github._state import (
    COLLABORATOR_ROLES,
    DEFAULT_APP_EVENTS,
    DEFAULT_APP_PERMISSIONS,
    GHES_VERSION,
    JSON,
    CheckRun,
    Delivery,
    Fault,
    Installation,
    Issue,
    IssueComment,
    PullRequest,
    Push,
    RecordedRequest,
    Repo,
    Token,
    User,
)

# App and installation ids are unique in the whole process: githubkit's default cache is
# process-wide and keyed by app id and installation id, so two fakes must never share them.
_GLOBAL_IDS = itertools.count(10_000_000 + secrets.randbelow(1_000_000) * 100)

MERGE_COMMITTER = Person("GitHub", "noreply@github.com")

_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")


def _generate_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class FakeGitHub:
    """A stateful GitHub (Enterprise Server style) on 127.0.0.1.

    REST under ``api_url`` (``.../api/v3``), GraphQL at ``graphql_url``, git smart HTTP under
    ``git_url`` (``<git_url>/<owner>/<repo>.git``), a GitHub App with a fresh RSA key,
    installations, installation tokens, and webhook payloads signed with ``webhook_secret``.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        app_slug: str = "lockwarden",
        app_name: str = "Lockwarden",
        app_owner: str = "lockwarden-dev",
        token_lifetime_s: float = 3600.0,
        app_permissions: Mapping[str, str] | None = None,
    ) -> None:
        self._tmp: str | None = None
        if root is None:
            self._tmp = tempfile.mkdtemp(prefix="fake-github-")
            root = Path(self._tmp)
        self.root = root
        self.repos_root = root / "repos"
        self.home = root / "home"
        self.repos_root.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)

        self.lock = threading.RLock()
        self.created_at = time.time() - 86400
        self.app_id: int = next(_GLOBAL_IDS)
        self.client_id = "Iv23li" + secrets.token_hex(7)
        self.app_slug = app_slug
        self.app_name = app_name
        self.app_owner = app_owner
        self.app_permissions: dict[str, str] = dict(app_permissions or DEFAULT_APP_PERMISSIONS)
        self.app_events: list[str] = list(DEFAULT_APP_EVENTS)
        self.private_key_pem, self.public_key_pem = _generate_key()
        self.webhook_secret = secrets.token_hex(20)
        self.token_lifetime_s = token_lifetime_s
        self.rate_limit = 5000
        self.hook_id = 400_000 + secrets.randbelow(100_000)

        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.requests: list[RecordedRequest] = []
        self.pushes: list[Push] = []
        self.deliveries: list[Delivery] = []
        self.faults: list[Fault] = []
        self.git_errors: list[str] = []  # stderr of git http-backend runs that failed
        self.rate_used: dict[str, int] = {}
        self._users: dict[str, User] = {}
        self._teams: dict[tuple[str, str], int] = {}
        self._repos: dict[str, Repo] = {}
        self._ids = itertools.count(1000)
        self.render = Renderer(self)

        self.user(app_owner, "Organization")
        self.user(self.bot_login, "Bot")

        self._server, self._thread = start_server(self)
        port = self._server.server_address[1]
        self.git_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.git_url}/api/v3"
        # GraphQL where GHES has it (githubkit posts there for an ``.../api/v3`` base URL);
        # ``<git_url>/graphql``, github.com's path, answers too.
        self.graphql_url = f"{self.git_url}/api/graphql"
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- identities ----------------------------------------------------------------------

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.git_url).netloc

    def new_id(self) -> int:
        return next(self._ids)

    def user(self, login: str, type: Literal["User", "Organization", "Bot"] | None = None) -> User:
        """The user ``login`` (made on first use; ``type`` sets it when new)."""
        with self.lock:
            found = self._users.get(login.lower())
            if found is None:
                found = User(login=login, id=self.new_id(), type=type or "User")
                self._users[login.lower()] = found
            return found

    def team_id(self, org: str, slug: str) -> int:
        with self.lock:
            return self._teams.setdefault((org.lower(), slug.lower()), self.new_id())

    def create_installation(
        self,
        account: str,
        *,
        repos: Sequence[str] = (),
        account_type: Literal["User", "Organization"] = "Organization",
        permissions: Mapping[str, str] | None = None,
        events: Sequence[str] | None = None,
    ) -> Installation:
        """Install the app on ``account``: on all its repositories when ``repos`` is empty,
        else on those (full names, created now or later with ``create_repo``)."""
        with self.lock:
            user = self.user(account, account_type)
            user.type = account_type
            inst = Installation(
                id=next(_GLOBAL_IDS),
                account=user.login,
                account_type=account_type,
                repository_selection="selected" if repos else "all",
                repositories=[self._canonical(name) for name in repos],
                permissions=dict(permissions or self.app_permissions),
                events=list(events or self.app_events),
                created_at=time.time(),
            )
            self.installations[inst.id] = inst
            return inst

    def installation_for(self, full_name: str) -> Installation | None:
        with self.lock:
            repo = self._repos.get(full_name.lower())
            if repo is None:
                return None
            for inst in self.installations.values():
                if self.installation_covers(inst, repo):
                    return inst
            return None

    def installation_covers(self, inst: Installation, repo: Repo) -> bool:
        if inst.suspended or inst.account.lower() != repo.owner.lower():
            return False
        if inst.repository_selection == "all":
            return True
        return repo.full_name.lower() in {name.lower() for name in inst.repositories}

    def add_repos_to_installation(self, inst: Installation, repos: Sequence[str]) -> None:
        """Add repositories to an installation on selected repositories (one on all of its
        account's repositories covers them already)."""
        with self.lock:
            if inst.repository_selection == "all":
                return
            for name in repos:
                canonical = self._canonical(name)
                if canonical.lower() not in {n.lower() for n in inst.repositories}:
                    inst.repositories.append(canonical)

    def _canonical(self, full_name: str) -> str:
        repo = self._repos.get(full_name.lower())
        return repo.full_name if repo else full_name

    # -- tokens --------------------------------------------------------------------------

    def issue_token(
        self,
        installation: Installation | int,
        *,
        repositories: Sequence[str] | None = None,
        permissions: Mapping[str, str] | None = None,
        lifetime_s: float | None = None,
    ) -> Token:
        """Mint an installation token directly (what ``POST .../access_tokens`` does)."""
        inst_id = installation if isinstance(installation, int) else installation.id
        with self.lock:
            inst = self.installations[inst_id]
            token = Token(
                token="ghs_" + "".join(secrets.choice(_ALNUM) for _ in range(36)),
                installation_id=inst.id,
                expires_at=time.time()
                + (self.token_lifetime_s if lifetime_s is None else lifetime_s),
                permissions=dict(permissions or inst.permissions),
                repositories=list(repositories) if repositories is not None else None,
            )
            self.tokens[token.token] = token
            return token

    def expire_tokens(self) -> None:
        """Make every installation token issued so far expired."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, time.time() - 1)

    def valid_token(self, value: str) -> Token | None:
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.expires_at <= time.time():
                return None
            inst = self.installations.get(token.installation_id)
            if inst is None or inst.suspended:
                return None
            return token

    def token_covers(self, token: Token, repo: Repo) -> bool:
        inst = self.installations[token.installation_id]
        if not self.installation_covers(inst, repo):
            return False
        if token.repositories is None:
            return True
        return repo.name.lower() in {name.split("/")[-1].lower() for name in token.repositories}

    # -- repositories --------------------------------------------------------------------

    def create_repo(
        self,
        full_name: str,
        *,
        files: Mapping[str, str | bytes],
        default_branch: str = "main",
        installation: Installation | None = None,
        private: bool = True,
        message: str = "Initial commit",
        author: tuple[str, str] = ("Alice", "alice@example.com"),
    ) -> Repo:
        """A bare repository with one commit of ``files`` on ``default_branch``."""
        if not _REPO_NAME.match(full_name):
            raise ValueError(f"not an owner/name: {full_name!r}")
        owner, name = full_name.split("/")
        with self.lock:
            if full_name.lower() in self._repos:
                raise ValueError(f"{full_name} exists")
            if installation is not None and installation.account.lower() != owner.lower():
                raise ValueError(f"installation {installation.id} is on {installation.account}")
            owner_type = installation.account_type if installation else None
            owner_user = self.user(owner, owner_type)
            git = BareRepo.init(self.repos_root / owner / f"{name}.git", self.home, default_branch)
            repo = Repo(
                id=self.new_id(),
                owner=owner_user.login,
                name=name,
                default_branch=default_branch,
                private=private,
                created_at=time.time(),
                git=git,
            )
            self._repos[full_name.lower()] = repo
            if installation is not None and installation.repository_selection == "selected":
                self.add_repos_to_installation(installation, [repo.full_name])
            git.commit_files(default_branch, files, message=message, author=Person(*author))
            repo.pushed_at = time.time()
            return repo

    def repo(self, full_name: str) -> Repo:
        with self.lock:
            try:
                return self._repos[full_name.lower()]
            except KeyError:
                raise KeyError(f"no repository {full_name}") from None

    def find_repo(self, owner: str, name: str) -> Repo | None:
        with self.lock:
            return self._repos.get(f"{owner}/{name}".lower())

    def all_repos(self) -> list[Repo]:
        with self.lock:
            return sorted(self._repos.values(), key=lambda r: r.id)

    def clone_url(self, full_name: str) -> str:
        return f"{self.git_url}/{full_name}.git"

    def push_files(
        self,
        full_name: str,
        files: Mapping[str, str | bytes | None],
        *,
        branch: str | None = None,
        message: str = "Update files",
        author: tuple[str, str] = ("Alice", "alice@example.com"),
    ) -> str:
        """Commit ``files`` (None deletes) as a human onto ``branch`` (default branch by
        default; a missing branch starts from the default branch).  Returns the new sha."""
        with self.lock:
            repo = self.repo(full_name)
            target = branch or repo.default_branch
            before = repo.git.branch_sha(target)
            sha = repo.git.commit_files(
                target,
                files,
                message=message,
                author=Person(*author),
                start=repo.default_branch,
            )
            repo.pushed_at = time.time()
            self.pushes.append(
                Push(repo.full_name, f"refs/heads/{target}", before or "0" * 40, sha, None)
            )
            return sha

    def create_branch(self, full_name: str, branch: str, *, from_ref: str | None = None) -> str:
        with self.lock:
            repo = self.repo(full_name)
            sha = repo.git.resolve(from_ref or repo.default_branch)
            if sha is None:
                raise ValueError(f"no commit {from_ref!r} in {full_name}")
            repo.git.update_ref(f"refs/heads/{branch}", sha, "0" * 40)
            return sha

    def delete_branch(self, full_name: str, branch: str) -> None:
        """Delete a branch; open pull requests from it are closed, as on GitHub."""
        with self.lock:
            repo = self.repo(full_name)
            sha = repo.git.branch_sha(branch)
            if sha is None or not repo.git.delete_ref(f"refs/heads/{branch}"):
                raise KeyError(f"no branch {branch} in {full_name}")
            self.branch_deleted(repo, branch, sha)

    def branch_deleted(self, repo: Repo, branch: str, last_sha: str) -> None:
        for pr in repo.pulls.values():
            if pr.state == "open" and pr.head == branch:
                pr.head_sha = last_sha
                self.mark_closed(repo, pr)

    def branches(self, full_name: str) -> dict[str, str]:
        return self.repo(full_name).git.branches()

    def read_file(self, full_name: str, path: str, ref: str | None = None) -> str:
        data = self.read_bytes(full_name, path, ref)
        return data.decode()

    def read_bytes(self, full_name: str, path: str, ref: str | None = None) -> bytes:
        repo = self.repo(full_name)
        data = repo.git.read_blob(ref or repo.default_branch, path)
        if data is None:
            raise FileNotFoundError(f"{full_name}@{ref or repo.default_branch}:{path}")
        return data

    def log(self, full_name: str, ref: str | None = None) -> list[CommitInfo]:
        """Commits reachable from ``ref`` (default branch by default), newest first."""
        repo = self.repo(full_name)
        return repo.git.log(ref or repo.default_branch)

    # -- collaborators -------------------------------------------------------------------

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """Give ``login`` a role on the repository: admin, maintain, write, triage, read, none."""
        if permission not in COLLABORATOR_ROLES:
            raise ValueError(f"unknown role {permission!r}")
        with self.lock:
            self.user(login)
            self.repo(full_name).permissions[login.lower()] = permission

    def role_of(self, repo: Repo, login: str) -> str:
        if login.lower() == repo.owner.lower():
            return "admin"
        return repo.permissions.get(login.lower(), "none")

    # -- pull requests -------------------------------------------------------------------

    def pulls(self, full_name: str, *, state: str = "all") -> list[PullRequest]:
        with self.lock:
            found = sorted(self.repo(full_name).pulls.values(), key=lambda pr: pr.number)
            return [pr for pr in found if state == "all" or pr.state == state]

    def pull(self, full_name: str, number: int) -> PullRequest:
        with self.lock:
            try:
                return self.repo(full_name).pulls[number]
            except KeyError:
                raise KeyError(f"no pull request #{number} in {full_name}") from None

    def open_pull(
        self,
        full_name: str,
        *,
        head: str,
        title: str,
        base: str | None = None,
        body: str | None = None,
        user: str = "alice",
        draft: bool = False,
    ) -> PullRequest:
        """Open a pull request as a human."""
        with self.lock:
            repo = self.repo(full_name)
            return self.create_pull(
                repo, head, base or repo.default_branch, title, body, user, draft
            )

    def create_pull(
        self,
        repo: Repo,
        head: str,
        base: str,
        title: str,
        body: str | None,
        user: str,
        draft: bool,
    ) -> PullRequest:
        head_branch = head.split(":", 1)[1] if ":" in head else head
        head_owner = head.split(":", 1)[0] if ":" in head else repo.owner
        if not title:
            raise validation_failed(
                "PullRequest", "title is missing", field="title", code="missing_field"
            )
        check_body_length("PullRequest", body)
        if head_owner.lower() != repo.owner.lower():
            raise validation_failed("PullRequest", "head is invalid", field="head", code="invalid")
        head_sha = repo.git.branch_sha(head_branch)
        base_sha = repo.git.branch_sha(base)
        if base_sha is None:
            raise validation_failed("PullRequest", "base is invalid", field="base", code="invalid")
        if head_sha is None:
            raise validation_failed("PullRequest", "head is invalid", field="head", code="invalid")
        for pr in repo.pulls.values():
            if pr.state == "open" and pr.head == head_branch and pr.base == base:
                raise validation_failed(
                    "PullRequest", f"A pull request already exists for {repo.owner}:{head_branch}."
                )
        if head_sha == base_sha or repo.git.count_commits(base_sha, head_sha) == 0:
            raise validation_failed("PullRequest", f"No commits between {base} and {head_branch}")
        now = time.time()
        pr = PullRequest(
            id=self.new_id(),
            issue_id=self.new_id(),
            number=repo.next_number,
            title=title,
            body=body,
            head=head_branch,
            base=base,
            user=self.user(user).login,
            created_at=now,
            updated_at=now,
            draft=draft,
            head_sha=head_sha,
            base_sha=base_sha,
        )
        repo.next_number += 1
        repo.pulls[pr.number] = pr
        return pr

    def pull_shas(self, repo: Repo, pr: PullRequest) -> tuple[str, str]:
        """(head sha, base sha): the branches' tips while open, frozen once closed."""
        if pr.state == "open":
            pr.head_sha = repo.git.branch_sha(pr.head) or pr.head_sha
            pr.base_sha = repo.git.branch_sha(pr.base) or pr.base_sha
        return pr.head_sha, pr.base_sha

    def mergeability(
        self, repo: Repo, pr: PullRequest, head_sha: str, base_sha: str
    ) -> tuple[bool | None, str]:
        if pr.state != "open":
            return None, "unknown"
        clean = repo.git.merge_tree(base_sha, head_sha) is not None
        if not clean:
            return False, "dirty"
        return True, "draft" if pr.draft else "clean"

    def close_pull(self, full_name: str, number: int) -> PullRequest:
        with self.lock:
            repo = self.repo(full_name)
            pr = self.pull(full_name, number)
            self.pull_shas(repo, pr)
            self.mark_closed(repo, pr)
            return pr

    def mark_closed(self, repo: Repo, pr: PullRequest) -> None:
        now = time.time()
        pr.state = "closed"
        pr.closed_at = now
        pr.updated_at = now

    def reopen(self, repo: Repo, pr: PullRequest) -> None:
        if repo.git.branch_sha(pr.head) is None:
            raise validation_failed(
                "PullRequest", "state cannot be changed. The head branch was deleted."
            )
        for other in repo.pulls.values():
            if (
                other is not pr
                and other.state == "open"
                and other.head == pr.head
                and other.base == pr.base
            ):
                raise validation_failed(
                    "PullRequest", f"A pull request already exists for {repo.owner}:{pr.head}."
                )
        pr.state = "open"
        pr.closed_at = None
        pr.updated_at = time.time()

    def merge_pull(
        self,
        full_name: str,
        number: int,
        *,
        method: Literal["merge", "squash", "rebase"] = "merge",
        user: str = "alice",
    ) -> str:
        """Merge like GitHub's merge button; returns the new tip of the base branch."""
        with self.lock:
            repo = self.repo(full_name)
            return self.merge(repo, self.pull(full_name, number), method, user)

    def merge(
        self,
        repo: Repo,
        pr: PullRequest,
        method: str,
        user: str,
        *,
        sha: str | None = None,
        commit_title: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        if pr.state != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        head_sha, base_sha = self.pull_shas(repo, pr)
        if sha is not None and sha != head_sha:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        if pr.draft:
            raise ApiError(405, "Pull Request is still a draft")
        merger = self.user(user)
        author = Person(merger.login, f"{merger.id}+{merger.login}@users.noreply.{self.host}")
        if method == "rebase":
            if not repo.git.is_ancestor(base_sha, head_sha):
                raise ApiError(405, "This branch can't be rebased")
            new = head_sha
        else:
            tree = repo.git.merge_tree(base_sha, head_sha)
            if tree is None:
                raise ApiError(405, "Pull Request is not mergeable")
            if method == "merge":
                title = (
                    commit_title or f"Merge pull request #{pr.number} from {repo.owner}/{pr.head}"
                )
                message = f"{title}\n\n{commit_message if commit_message is not None else pr.title}"
                new = repo.git.commit_tree(
                    tree, [base_sha, head_sha], message, author, MERGE_COMMITTER
                )
            elif method == "squash":
                title = commit_title or f"{pr.title} (#{pr.number})"
                if commit_message is None:
                    messages = [
                        c.message for c in repo.git.log(head_sha, exclude=base_sha, reverse=True)
                    ]
                    commit_message = "\n\n".join(f"* {m}" for m in messages)
                message = f"{title}\n\n{commit_message}"
                new = repo.git.commit_tree(tree, [base_sha], message, author, MERGE_COMMITTER)
            else:
                raise validation_failed("PullRequest", f"{method} is not a merge method")
        repo.git.update_ref(f"refs/heads/{pr.base}", new, base_sha)
        repo.pushed_at = time.time()
        self.mark_closed(repo, pr)
        pr.merged_at = pr.closed_at
        pr.merged_by = merger.login
        pr.merge_commit_sha = new
        return new

    # -- issues --------------------------------------------------------------------------

    def create_issue(
        self, full_name: str, title: str, body: str = "", *, user: str = "alice"
    ) -> Issue:
        """Open a plain issue as a human.  It takes the repository's next number: issues and
        pull requests share one sequence, as on GitHub."""
        if not title:
            raise validation_failed(
                "Issue", "title is missing", field="title", code="missing_field"
            )
        check_body_length("Issue", body)
        with self.lock:
            repo = self.repo(full_name)
            now = time.time()
            issue = Issue(
                id=self.new_id(),
                number=repo.next_number,
                title=title,
                body=body or None,
                user=self.user(user).login,
                created_at=now,
                updated_at=now,
            )
            repo.next_number += 1
            repo.issues[issue.number] = issue
            return issue

    def issue(self, full_name: str, number: int) -> Issue:
        """The plain issue ``number`` (a pull request's number is a KeyError: see ``pull``)."""
        with self.lock:
            try:
                return self.repo(full_name).issues[number]
            except KeyError:
                raise KeyError(f"no issue #{number} in {full_name}") from None

    def issue_or_pull(self, repo: Repo, number: int) -> Issue | PullRequest:
        """What ``/issues/{number}`` names: a plain issue or a pull request."""
        with self.lock:
            found = repo.issues.get(number) or repo.pulls.get(number)
            if found is None:
                raise KeyError(f"no issue or pull request #{number} in {repo.full_name}")
            return found

    # -- comments, reactions, checks -----------------------------------------------------

    def comments(self, full_name: str, number: int) -> list[IssueComment]:
        with self.lock:
            repo = self.repo(full_name)
            return sorted(
                (c for c in repo.comments.values() if c.number == number), key=lambda c: c.id
            )

    def add_comment(
        self, full_name: str, number: int, body: str, *, user: str = "alice"
    ) -> IssueComment:
        """A comment by a human on issue or pull request ``number``."""
        with self.lock:
            repo = self.repo(full_name)
            self.issue_or_pull(repo, number)
            return self.create_comment(repo, number, body, self.user(user).login, via_app=False)

    def create_comment(
        self, repo: Repo, number: int, body: str, user: str, *, via_app: bool
    ) -> IssueComment:
        check_body_length("IssueComment", body)
        now = time.time()
        comment = IssueComment(
            id=self.new_id(),
            number=number,
            body=body,
            user=user,
            created_at=now,
            updated_at=now,
            via_app=via_app,
        )
        repo.comments[comment.id] = comment
        commented = repo.pulls.get(number) or repo.issues.get(number)
        if commented is not None:
            commented.updated_at = now
        return comment

    def edit_comment(self, full_name: str, comment_id: int, body: str) -> IssueComment:
        with self.lock:
            repo = self.repo(full_name)
            comment = repo.comments[comment_id]
            self.update_comment(comment, body)
            return comment

    def update_comment(self, comment: IssueComment, body: str) -> None:
        check_body_length("IssueComment", body)
        comment.edits.append(comment.body)
        comment.body = body
        comment.updated_at = time.time()

    def check_runs(
        self, full_name: str, *, head_sha: str | None = None, name: str | None = None
    ) -> list[CheckRun]:
        with self.lock:
            runs = sorted(self.repo(full_name).check_runs.values(), key=lambda r: r.id)
            return [
                r
                for r in runs
                if (head_sha is None or r.head_sha == head_sha) and (name is None or r.name == name)
            ]

    # -- fault injection and recorded requests -------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests whose method is ``method`` (``"*"``: any) and
        whose path (``/api/v3/...`` or ``/<owner>/<repo>.git/...``, no query) matches
        ``path_regex`` (``re.search``) with ``status``, ``headers`` and ``body`` (default:
        GitHub's message for that status), before authentication."""
        re.compile(path_regex)
        with self.lock:
            self.faults.append(
                Fault(method.upper(), path_regex, status, dict(headers or {}), body, times)
            )

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method in ("*", method) and re.search(fault.path_regex, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        """Recorded requests with that method (``"*"``: any) whose path matches."""
        with self.lock:
            return [
                r
                for r in self.requests
                if method in ("*", r.method) and re.search(path_regex, r.path)
            ]

    def connections(self) -> list[Connection]:
        """Every TCP connection the server accepted so far, each with its requests."""
        with self.lock:
            return list(self._server.connections)

    # -- webhooks ------------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    def webhook_headers(
        self, event: str, body: bytes, delivery: str | None = None
    ) -> dict[str, str]:
        sha1 = hmac.new(self.webhook_secret.encode(), body, hashlib.sha1).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/6a1e9a2",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Enterprise-Host": self.host,
            "X-GitHub-Enterprise-Version": GHES_VERSION,
            "X-Hub-Signature": f"sha1={sha1}",
            "X-Hub-Signature-256": self.sign(body),
        }

    def payload(self, event: str, action: str | None = None, **fields: Any) -> JSON:
        """A webhook payload for ``event``/``action``, built from (and acting on) the state.

        ``installation`` created: ``installation=``; ``installation_repositories`` added:
        ``installation=, repos=[...]``; ``push``: ``repo=, before=None, after=None,
        branch=None, pusher="alice"``; ``pull_request`` closed: ``repo=, number=,
        merged=None, sender=None``; converted_to_draft and ready_for_review: ``repo=, number=,
        sender="alice"``; ``issue_comment`` created: ``repo=, number=, body=,
        user="alice"``; edited: ``repo=, comment_id=, body=, user=None`` (``number`` is a pull
        request's or a plain issue's, see ``create_issue``: the ``issue`` object has a
        ``pull_request`` key only for a pull request, as on GitHub); ``check_run``
        rerequested: ``repo=, check_run_id=, sender="alice"``; ``check_suite`` rerequested:
        ``repo=, head_sha=, sender="alice"``.
        """
        with self.lock:
            return _webhooks.build(self, event, action, fields)

    @staticmethod
    def encode(payload: Mapping[str, Any]) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    def deliver(
        self,
        url: str,
        event: str,
        payload: Mapping[str, Any],
        *,
        delivery: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        delivered_at: float | None = None,
    ) -> httpx.Response:
        """POST a signed delivery to ``url`` (a loopback address) and record it (with an id,
        as ``/app/hook/deliveries`` lists it). ``delivered_at`` backdates the record."""
        host = urllib.parse.urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"webhooks go to loopback addresses only, not {url}")
        body = self.encode(payload)
        sent = self.webhook_headers(event, body, delivery)
        sent.update(headers or {})
        action = payload.get("action")
        installation = payload.get("installation")
        repository = payload.get("repository")
        _, response = self._send(
            url,
            body,
            sent,
            Delivery(
                event,
                sent["X-GitHub-Delivery"],
                url,
                0,
                action=action if isinstance(action, str) else None,
                installation_id=_id_of(installation),
                repository_id=_id_of(repository),
            ),
            timeout=timeout,
            delivered_at=delivered_at,
        )
        if response is None:
            raise httpx.ConnectError(f"could not deliver to {url}")
        return response

    def redeliver(self, delivery_id: int, *, timeout: float = 30.0) -> Delivery:
        """Send a recorded delivery again (same body, headers and guid) as a new attempt,
        like ``POST /app/hook/deliveries/{id}/attempts``; raises ``KeyError`` when unknown."""
        with self.lock:
            original = next((d for d in self.deliveries if d.id == delivery_id), None)
        if original is None:
            raise KeyError(delivery_id)
        record, _ = self._send(
            original.url,
            original.body,
            dict(original.headers),
            dataclasses.replace(original, redelivery=True),
            timeout=timeout,
        )
        return record

    def _send(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        template: Delivery,
        *,
        timeout: float,
        delivered_at: float | None = None,
    ) -> tuple[Delivery, httpx.Response | None]:
        started = time.time()
        response: httpx.Response | None = None
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                response = client.post(url, content=body, headers=headers)
        except httpx.TransportError:
            pass  # recorded as a failed attempt, as GitHub does
        record = dataclasses.replace(
            template,
            status=response.status_code if response is not None else 0,
            id=self.new_id(),
            delivered_at=started if delivered_at is None else delivered_at,
            duration=time.time() - started,
            body=body,
            headers=dict(headers),
            response_headers=dict(response.headers) if response is not None else {},
            response_body=response.text if response is not None else "",
        )
        with self.lock:
            self.deliveries.append(record)
        return record, response


def _id_of(value: Any) -> int | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), int):
        return int(value["id"])
    return None


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
