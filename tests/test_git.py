"""bot.git against real git: the fake GitHub's smart HTTP (Basic ``x-access-token`` auth, tokens
minted through its REST API) and bare repositories on file:// URLs."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest

from bot import git as bot_git
from bot import ledger
from bot.git import (
    BotIdentity,
    BranchMovedError,
    Clone,
    GitError,
    bot_owns_branch,
    clone,
    commit_files,
    delete_remote_branch,
    fetch_branch,
    push_branch,
    redact,
)
from tests.support.fake_github import FakeGitHub, Installation, Person
from tests.support.processes import running_with, settled

REPO = "acme/models"
BRANCH = "lockwarden/main"
BOT = BotIdentity()
HUMAN = ("Alice", "alice@example.com")
FILES = {"requirements.in": "torch\n", "requirements.txt": "torch==2.3.0\n"}


@pytest.fixture(autouse=True)
def _no_host_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def run_git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """git as a person runs it, with none of the host's (or a test's) git settings."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key not in ("HOME", "XDG_CONFIG_HOME")
    }
    clean |= {"HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=clean | (env or {}), capture_output=True, check=True
    )
    return done.stdout.decode().strip()


class Tokens:
    """A TokenSource that mints a new installation token through the REST API on each call,
    as the app does when its cached token is about to expire."""

    def __init__(self, fake: FakeGitHub, inst: Installation) -> None:
        self.fake = fake
        self.inst = inst
        self.issued: list[str] = []

    def __call__(self) -> str:
        now = int(time.time())
        app_jwt = jwt.encode(
            {"iat": now - 30, "exp": now + 500, "iss": str(self.fake.app_id)},
            self.fake.private_key_pem,
            algorithm="RS256",
        )
        response = httpx.post(
            f"{self.fake.api_url}/app/installations/{self.inst.id}/access_tokens",
            headers={"Authorization": f"Bearer {app_jwt}", "Accept": "application/vnd.github+json"},
        )
        assert response.status_code == 201, response.text
        token = str(response.json()["token"])
        self.issued.append(token)
        return token

    @property
    def calls(self) -> int:
        return len(self.issued)


def secret_forms(token: str) -> list[str]:
    return [token, base64.b64encode(f"x-access-token:{token}".encode()).decode()]


def assert_no_secrets(root: Path, tokens: list[str]) -> None:
    """No token, in clear or base64, in any file of ``.git`` nor in any object."""
    gitdir = root / ".git"
    assert (gitdir / "config").is_file()
    assert any((gitdir / "logs").rglob("*")), "reflogs exist, so looking in them means something"
    blobs = [
        path.read_bytes()
        for path in gitdir.rglob("*")
        if path.is_file() and "objects" not in path.relative_to(gitdir).parts
    ]
    blobs.append(
        subprocess.run(
            ["git", "cat-file", "--batch-all-objects", "--batch"],
            cwd=root,
            capture_output=True,
            check=True,
            env={**os.environ, "GIT_DIR": str(gitdir)},
        ).stdout
    )
    for token in tokens:
        for form in secret_forms(token):
            assert not any(form.encode() in blob for blob in blobs), f"{form[:8]}... leaked"
    assert not (gitdir / "FETCH_HEAD").exists() or all(
        token not in (gitdir / "FETCH_HEAD").read_text() for token in tokens
    )


def assert_redacted(err: BaseException, secrets: list[str]) -> None:
    texts = [
        str(err),
        repr(err),
        getattr(err, "detail", ""),
        "".join(traceback.format_exception(err)),
    ]
    for secret in secrets:
        for form in secret_forms(secret):
            assert all(form not in text for text in texts)
    assert err.__cause__ is None
    assert err.__context__ is None


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def inst(fake: FakeGitHub) -> Installation:
    installation = fake.create_installation("acme")
    fake.create_repo(REPO, files=FILES, installation=installation, author=HUMAN)
    for number in range(3):
        fake.push_files(REPO, {"NOTES.md": f"note {number}\n"}, message=f"Note {number}")
    return installation


@pytest.fixture
def tokens(fake: FakeGitHub, inst: Installation) -> Tokens:
    return Tokens(fake, inst)


def refresh_message(text: str = "torch==2.4.0\n") -> str:
    records = [ledger.LockRecord("serve", "requirements.txt", text, "sha256:ab12", "passed")]
    return ledger.commit_message(
        "Refresh locks", "torch 2.3.0 -> 2.4.0", ledger.trailers("full", records)
    )


def bot_push(fake: FakeGitHub, tokens: Tokens, dest: Path, text: str) -> tuple[Clone, str]:
    """One bot job: clone, (re)write the bot branch from the default branch, push it."""
    work = clone(fake.clone_url(REPO), dest, token=tokens)
    remote = fetch_branch(work, BRANCH, token=tokens)
    sha = commit_files(work, BRANCH, {"requirements.txt": text}, refresh_message(text), BOT)
    push_branch(work, BRANCH, token=tokens, force=remote is not None, expected_remote_sha=remote)
    return work, sha


# -- clone -------------------------------------------------------------------------------------


def test_shallow_clone_of_the_default_branch(
    fake: FakeGitHub, inst: Installation, tokens: Tokens, tmp_path: Path
) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens, depth=2)

    assert work == Clone(
        path=(tmp_path / "work").resolve(),
        repo=REPO,
        default_branch="main",
        base_sha=fake.branches(REPO)["main"],
    )
    assert (work.path / "requirements.txt").read_text() == "torch==2.3.0\n"
    assert run_git("rev-list", "--count", "HEAD", cwd=work.path) == "2"
    assert (work.path / ".git" / "shallow").is_file()
    refs = run_git("for-each-ref", "--format=%(refname)", cwd=work.path).splitlines()
    assert refs == ["refs/heads/main", "refs/remotes/origin/main"]
    assert run_git("symbolic-ref", "HEAD", cwd=work.path) == "refs/heads/main"
    assert run_git("status", "--porcelain", cwd=work.path) == ""
    assert run_git("remote", "get-url", "origin", cwd=work.path) == fake.clone_url(REPO)
    assert tokens.calls == 2  # ls-remote for the default branch, then the fetch
    assert {r.auth for r in fake.requests_to("GET", r"/info/refs$")} == {f"installation:{inst.id}"}
    assert_no_secrets(work.path, tokens.issued)


def test_clone_of_a_named_branch_in_full_without_a_token(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    run_git("init", "--quiet", "--initial-branch=trunk", cwd=source)
    for number in range(3):
        (source / "a.txt").write_text(f"{number}\n")
        run_git("add", "a.txt", cwd=source)
        run_git("commit", "--quiet", "-m", f"c{number}", cwd=source, env=person_env(HUMAN))
    run_git("branch", "release", "HEAD~1", cwd=source)
    run_git("tag", "v1", cwd=source)
    bare = tmp_path / "acme" / "tools.git"
    run_git("clone", "--quiet", "--bare", str(source), str(bare), cwd=tmp_path)

    work = clone(f"file://{bare}", tmp_path / "work", token=None, branch="release", depth=None)

    assert (work.repo, work.default_branch) == ("acme/tools", "release")
    assert work.base_sha == run_git("rev-parse", "release", cwd=source)
    assert not (work.path / ".git" / "shallow").exists()
    assert run_git("rev-list", "--count", "HEAD", cwd=work.path) == "2"
    assert run_git("tag", cwd=work.path) == ""
    assert (work.path / "a.txt").read_text() == "1\n"


def test_clone_refuses_credentials_in_the_url_and_a_used_folder(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        clone("https://x-access-token:ghs_secret@github.com/a/b.git", tmp_path / "a", token=None)
    assert "ghs_secret" not in str(info.value)
    assert not (tmp_path / "a").exists()
    with pytest.raises(GitError):
        clone("ext::sh -c touch% /tmp/pwned", tmp_path / "b", token=None)

    def never() -> str:
        raise AssertionError("the token must not be asked for")

    with pytest.raises(GitError, match="in clear"):
        clone("http://git.example.com/a/b.git", tmp_path / "b", token=never)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine\n")
    with pytest.raises(GitError):
        clone("file:///nowhere.git", tmp_path / "c", token=None)
    assert (tmp_path / "c" / "keep.txt").read_text() == "mine\n"
    with pytest.raises(GitError):
        clone("file:///nowhere.git", tmp_path / "d", token=None, depth=0)
    (tmp_path / "e").mkdir()
    with pytest.raises(GitError):
        clone("file:///nowhere.git", tmp_path / "e", token=None)
    assert list((tmp_path / "e").iterdir()) == []  # left as it was found


def test_clone_of_an_empty_repository(tmp_path: Path) -> None:
    bare = tmp_path / "empty.git"
    run_git("init", "--quiet", "--bare", str(bare), cwd=tmp_path)
    with pytest.raises(GitError):
        clone(f"file://{bare}", tmp_path / "work", token=None)
    assert not (tmp_path / "work").exists()


def test_a_missing_git_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("git.Git.GIT_PYTHON_GIT_EXECUTABLE", "/nonexistent/git")
    with pytest.raises(GitError, match="git was not found"):
        clone("file:///nowhere.git", tmp_path / "work", token=None)


# -- commit and push ---------------------------------------------------------------------------


def test_bot_commit_keeps_the_ledger_trailers_and_pushes_a_new_branch(
    fake: FakeGitHub, inst: Installation, tokens: Tokens, tmp_path: Path
) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    assert fetch_branch(work, BRANCH, token=tokens) is None
    message = refresh_message()

    sha = commit_files(
        work,
        BRANCH,
        {"requirements.txt": "torch==2.4.0\n", "locks/gpu/serve.txt": "torch==2.4.0+cu121\n"},
        message,
        BOT,
    )

    who = run_git("log", "-1", "--format=%an|%ae|%cn|%ce", sha, cwd=work.path)
    assert who == f"{BOT.name}|{BOT.email}|{BOT.name}|{BOT.email}"
    assert run_git("log", "-1", "--format=%B", sha, cwd=work.path) == message.strip()
    assert run_git("rev-parse", f"{sha}^", cwd=work.path) == work.base_sha
    [entry] = ledger.read_ledger(work.path, BRANCH)
    assert entry.commit == sha
    assert entry.mode == "full"
    assert entry.known_good
    assert entry.environments == (
        ledger.EnvRecord(
            "serve",
            "requirements.txt",
            ledger.lock_sha256("torch==2.4.0\n"),
            "sha256:ab12",
            "passed",
        ),
    )
    assert stat.S_IMODE((work.path / "locks/gpu/serve.txt").stat().st_mode) == 0o644

    push_branch(work, BRANCH, token=tokens, force=False, expected_remote_sha=None)

    assert fake.branches(REPO)[BRANCH] == sha
    pushed = fake.log(REPO, BRANCH)[0]
    assert pushed.author == pushed.committer == Person(BOT.name, BOT.email)
    lock_hash = ledger.lock_sha256("torch==2.4.0\n")
    assert pushed.trailers["Lockwarden-Env"] == [f"serve requirements.txt {lock_hash}"]
    assert fake.read_file(REPO, "locks/gpu/serve.txt", BRANCH) == "torch==2.4.0+cu121\n"
    assert fake.pushes[-1].installation_id == inst.id
    assert run_git("rev-parse", f"refs/remotes/origin/{BRANCH}", cwd=work.path) == sha
    assert tokens.calls == 4  # clone (2), fetch_branch (1: the branch is absent), push (1)
    assert_no_secrets(work.path, tokens.issued)


def test_repush_with_a_lease_when_the_branch_is_the_bots(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path
) -> None:
    _, first = bot_push(fake, tokens, tmp_path / "job1", "torch==2.4.0\n")
    new_main = fake.push_files(REPO, {"README.md": "hello\n"}, message="Docs", author=HUMAN)

    work = clone(fake.clone_url(REPO), tmp_path / "job2", token=tokens)
    remote = fetch_branch(work, BRANCH, token=tokens)
    assert remote == first
    assert bot_owns_branch(work, BRANCH, BOT)
    second = commit_files(
        work, BRANCH, {"requirements.txt": "torch==2.5.0\n"}, refresh_message("torch==2.5.0\n"), BOT
    )
    push_branch(work, BRANCH, token=tokens, force=True, expected_remote_sha=remote)

    assert fake.branches(REPO)[BRANCH] == second
    assert fake.log(REPO, BRANCH)[0].parents == (new_main,)
    assert not fake.repo(REPO).git.is_ancestor(first, second)
    assert_no_secrets(work.path, tokens.issued)


def _human_push(fake: FakeGitHub) -> None:
    fake.push_files(REPO, {"requirements.txt": "torch==2.4.1\n"}, branch=BRANCH, author=HUMAN)


def _edit_on_github(fake: FakeGitHub) -> None:
    # Authored as the bot (a suggestion applied, say) but committed by GitHub.
    fake.repo(REPO).git.commit_files(
        BRANCH,
        {"requirements.txt": "torch==2.4.1\n"},
        message="Apply suggestion",
        author=Person(BOT.name, BOT.email),
        committer=Person("GitHub", "noreply@github.com"),
    )


def _human_commit_under_a_bot_commit(fake: FakeGitHub) -> None:
    _human_push(fake)
    fake.repo(REPO).git.commit_files(
        BRANCH, {"x.txt": "x\n"}, message="Refresh locks", author=Person(BOT.name, BOT.email)
    )


@pytest.mark.parametrize("touch", [_human_push, _edit_on_github, _human_commit_under_a_bot_commit])
def test_a_commit_by_anyone_else_makes_the_branch_not_the_bots(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path, touch: Callable[[FakeGitHub], None]
) -> None:
    bot_push(fake, tokens, tmp_path / "job1", "torch==2.4.0\n")
    touch(fake)

    work = clone(fake.clone_url(REPO), tmp_path / "job2", token=tokens)
    assert fetch_branch(work, BRANCH, token=tokens) == fake.branches(REPO)[BRANCH]
    assert not bot_owns_branch(work, BRANCH, BOT)


def test_ownership_needs_a_fetched_branch(fake: FakeGitHub, tokens: Tokens, tmp_path: Path) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    with pytest.raises(GitError, match="fetch_branch"):
        bot_owns_branch(work, BRANCH, BOT)


def test_a_failed_lease_overwrites_nothing(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path
) -> None:
    job1, first = bot_push(fake, tokens, tmp_path / "job1", "torch==2.4.0\n")
    late = clone(fake.clone_url(REPO), tmp_path / "late", token=tokens)
    assert fetch_branch(late, BRANCH, token=tokens) == first
    # Another run moves the branch on while the late one is still building.
    moved = commit_files(
        job1, BRANCH, {"requirements.txt": "torch==2.4.2\n"}, refresh_message(), BOT
    )
    push_branch(job1, BRANCH, token=tokens, force=True, expected_remote_sha=first)
    assert fake.branches(REPO)[BRANCH] == moved
    commit_files(late, BRANCH, {"requirements.txt": "torch==2.5.0\n"}, refresh_message(), BOT)

    with pytest.raises(BranchMovedError) as info:
        push_branch(late, BRANCH, token=tokens, force=True, expected_remote_sha=first)
    assert isinstance(info.value, GitError)
    assert info.value.code == "git-branch-moved"
    assert "stale info" in info.value.detail
    with pytest.raises(BranchMovedError):  # "must not exist yet"
        push_branch(late, BRANCH, token=tokens, force=True, expected_remote_sha=None)
    with pytest.raises(BranchMovedError):  # not a fast-forward
        push_branch(late, BRANCH, token=tokens, force=False, expected_remote_sha=None)
    assert fake.branches(REPO)[BRANCH] == moved
    assert_no_secrets(late.path, tokens.issued)


REFUSED_BRANCHES = [
    "main",
    "feature/locks",
    "lockwarden",
    "lockwarden/",
    "lockwarden/../main",
    "lockwarden/x:refs/heads/main",
    "lockwarden/a b",
    "-f",
    "refs/heads/main",
]


def test_refuses_to_push_the_default_branch_or_a_foreign_one(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path
) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    commit_files(work, "feature/locks", {"requirements.txt": "x\n"}, "x\n", BOT)
    calls, pushes = tokens.calls, list(fake.pushes)
    for branch in REFUSED_BRANCHES:
        with pytest.raises(GitError, match=r"refusing|not a valid branch"):
            push_branch(work, branch, token=tokens, force=True, expected_remote_sha=None)
        with pytest.raises(GitError, match=r"refusing|not a valid branch"):
            delete_remote_branch(work, branch, token=tokens, expected_remote_sha=work.base_sha)
    assert (tokens.calls, fake.pushes) == (calls, pushes)
    assert set(fake.branches(REPO)) == {"main"}


def test_refuses_a_default_branch_under_the_bot_prefix(
    fake: FakeGitHub, inst: Installation, tokens: Tokens, tmp_path: Path
) -> None:
    fake.create_repo("acme/odd", files=FILES, installation=inst, default_branch="lockwarden/base")
    work = clone(fake.clone_url("acme/odd"), tmp_path / "work", token=tokens)
    assert work.default_branch == "lockwarden/base"
    commit_files(work, "lockwarden/base", {"requirements.txt": "x\n"}, "x\n", BOT)
    with pytest.raises(GitError, match="default branch"):
        push_branch(work, "lockwarden/base", token=tokens, force=True, expected_remote_sha=None)


def test_delete_remote_branch_under_a_lease(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path
) -> None:
    work, sha = bot_push(fake, tokens, tmp_path / "job", "torch==2.4.0\n")
    with pytest.raises(BranchMovedError):
        delete_remote_branch(work, BRANCH, token=tokens, expected_remote_sha=work.base_sha)
    assert fake.branches(REPO)[BRANCH] == sha

    delete_remote_branch(work, BRANCH, token=tokens, expected_remote_sha=sha)
    assert BRANCH not in fake.branches(REPO)
    assert fetch_branch(work, BRANCH, token=tokens) is None
    with pytest.raises(GitError):
        bot_owns_branch(work, BRANCH, BOT)


# -- the token ---------------------------------------------------------------------------------


def test_the_token_source_is_asked_before_every_network_command(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path
) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    assert tokens.calls == 2
    fake.expire_tokens()  # every token so far is dead: each next step needs a fresh one

    assert fetch_branch(work, BRANCH, token=tokens) is None
    assert tokens.calls == 3
    sha = commit_files(work, BRANCH, {"requirements.txt": "torch==2.4.0\n"}, refresh_message(), BOT)
    assert tokens.calls == 3  # local
    fake.expire_tokens()
    push_branch(work, BRANCH, token=tokens, force=True, expected_remote_sha=None)
    assert tokens.calls == 4
    fake.expire_tokens()
    assert fetch_branch(work, BRANCH, token=tokens) == sha
    assert tokens.calls == 5
    assert len(set(tokens.issued)) == 5
    assert fake.branches(REPO)[BRANCH] == sha
    assert_no_secrets(work.path, tokens.issued)


@pytest.mark.parametrize("bad", ["", "ghs_abc\r\nX-Injected: 1", "ghs abc", "ghs_é"])
def test_a_malformed_token_is_refused_before_git_runs(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path, bad: str
) -> None:
    requests = len(fake.requests)
    with pytest.raises(GitError, match="malformed") as info:
        clone(fake.clone_url(REPO), tmp_path / "work", token=lambda: bad)
    assert len(fake.requests) == requests
    assert bad not in str(info.value) or not bad
    assert not (tmp_path / "work").exists()


def test_a_refused_token_leaks_nowhere(fake: FakeGitHub, tokens: Tokens, tmp_path: Path) -> None:
    wrong = "ghs_" + "W" * 36
    with pytest.raises(GitError, match="token was refused") as info:
        clone(fake.clone_url(REPO), tmp_path / "a", token=lambda: wrong)
    assert fake.requests_to("GET", r"/info/refs$")[-1].status == 401
    assert_redacted(info.value, [wrong])
    assert not (tmp_path / "a").exists()

    work = clone(fake.clone_url(REPO), tmp_path / "b", token=tokens)
    commit_files(work, BRANCH, {"requirements.txt": "torch==2.4.0\n"}, refresh_message(), BOT)
    with pytest.raises(GitError, match="token was refused") as info:
        push_branch(work, BRANCH, token=lambda: wrong, force=False, expected_remote_sha=None)
    assert_redacted(info.value, [wrong])
    assert BRANCH not in fake.branches(REPO)
    assert_no_secrets(work.path, [wrong, *tokens.issued])


def test_a_token_without_the_needed_access_is_explained(
    fake: FakeGitHub, inst: Installation, tokens: Tokens, tmp_path: Path
) -> None:
    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    commit_files(work, BRANCH, {"requirements.txt": "torch==2.4.0\n"}, refresh_message(), BOT)
    read_only = fake.issue_token(inst, permissions={"contents": "read", "metadata": "read"}).token
    with pytest.raises(GitError, match="write access") as info:
        push_branch(work, BRANCH, token=lambda: read_only, force=False, expected_remote_sha=None)
    assert_redacted(info.value, [read_only])

    other = fake.create_installation("globex")
    fake.create_repo("globex/vision", files=FILES, installation=other)
    foreign = fake.issue_token(other).token
    with pytest.raises(GitError, match="not found") as info:
        clone(fake.clone_url(REPO), tmp_path / "foreign", token=lambda: foreign)
    assert_redacted(info.value, [foreign])


def test_git_traces_of_the_host_are_redacted(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A host that traces curl without redaction would print the Authorization header.
    monkeypatch.setenv("GIT_TRACE_CURL", "1")
    monkeypatch.setenv("GIT_CURL_VERBOSE", "1")
    monkeypatch.setenv("GIT_TRACE_REDACT", "0")
    wrong = "ghs_" + "T" * 36
    with pytest.raises(GitError) as info:
        clone(fake.clone_url(REPO), tmp_path / "work", token=lambda: wrong)
    assert "Send header" in info.value.detail  # the trace did reach the error text
    assert "Authorization: Basic" not in info.value.detail
    assert_redacted(info.value, [wrong])


def test_the_output_of_a_network_command_is_redacted(local: Clone) -> None:
    token = "ghs_" + "O" * 36
    shown = bot_git._run(
        local.path, ["config", "--get", "http.extraHeader"], network=True, token=lambda: token
    )
    assert shown.stdout == "***"  # the header itself is one of the secrets


def test_an_unreachable_host_leaks_nothing(tokens: Tokens, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/acme/models.git"
    with pytest.raises(GitError, match="could not be reached") as info:
        clone(url, tmp_path / "work", token=tokens)
    assert tokens.calls == 1
    assert_redacted(info.value, tokens.issued)
    assert not (tmp_path / "work").exists()


def test_a_silent_host_is_given_up_on(
    tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_git, "NETWORK_TIMEOUT_S", 1.0)
    with socket.socket() as silent:  # accepts connections (the backlog does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/acme/models.git"
        with pytest.raises(GitError, match="time limit") as info:
            clone(url, tmp_path / "work", token=tokens)
        # Stopped, not left waiting: neither git nor its remote helper still holds the URL.
        assert settled(lambda: not running_with(url)), running_with(url)
    assert_redacted(info.value, tokens.issued)


def test_redact() -> None:
    token = "ghs_" + "R" * 36
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    text = (
        f"token {token}\nAuthorization: Basic {basic}\nauthorization: bearer abc def\n"
        "fetching https://user:pa55@example.com/x.git"
    )
    assert redact(text, [token]) == (
        "token ***\nAuthorization: ***\nauthorization: ***\nfetching https://***@example.com/x.git"
    )


# -- the host's git setup ----------------------------------------------------------------------


def test_a_hostile_git_setup_on_the_host_has_no_effect(
    fake: FakeGitHub, tokens: Tokens, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = tmp_path / "hostile"
    marks = hostile / "marks"
    hooks = hostile / "hooks"
    hooks.mkdir(parents=True)
    marks.mkdir()
    snitch = hostile / "snitch.sh"
    snitch.write_text(f'#!/bin/sh\ncat >> {marks}/ran-$(basename "$0") 2>/dev/null\nexit 0\n')
    snitch.chmod(0o755)
    for hook in ("pre-commit", "commit-msg", "post-checkout", "pre-push", "reference-transaction"):
        (hooks / hook).symlink_to(snitch)
    dead = f"http://127.0.0.1:{unused_port()}/"
    config = f"""
[url "{dead}"]
    insteadOf = {fake.git_url}/
[http]
    proxy = {dead}
    extraHeader = X-Hostile: 1
[credential]
    helper = "!f() {{ cat >> {marks}/credential; }}; f"
[core]
    hooksPath = {hooks}
    fsmonitor = {hooks}/pre-commit
    autocrlf = true
[user]
    name = Mallory
    email = mallory@example.com
[commit]
    gpgSign = true
[gpg]
    program = false
[init]
    templateDir = {hostile}/template
"""
    (hostile / "gitconfig").write_text(config)
    home = hostile / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".gitconfig").write_text(config)
    (home / ".config" / "git" / "config").write_text(config)
    (home / ".config" / "git" / "attributes").write_text("* text eol=crlf\n")
    (home / ".config" / "git" / "ignore").write_text("*.txt\n")
    (home / ".netrc").write_text("machine 127.0.0.1 login x-access-token password stolen\n")
    for key, value in {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_GLOBAL": str(hostile / "gitconfig"),
        "GIT_CONFIG_SYSTEM": str(hostile / "gitconfig"),
        "GIT_CONFIG_PARAMETERS": f"'url.{dead}.insteadof'='{fake.git_url}/'",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.proxy",
        "GIT_CONFIG_VALUE_0": dead,
        # What a git hook's environment looks like: pointers to some other repository.
        "GIT_DIR": str(hostile / "other.git"),
        "GIT_WORK_TREE": str(hostile / "other"),
        "GIT_INDEX_FILE": str(hostile / "other.index"),
        "GIT_AUTHOR_NAME": "Mallory",
        "GIT_COMMITTER_EMAIL": "mallory@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GIT_CONFIG_NOSYSTEM")

    work = clone(fake.clone_url(REPO), tmp_path / "work", token=tokens)
    assert (work.path / "requirements.txt").read_bytes() == b"torch==2.3.0\n"  # no CRLF
    assert fetch_branch(work, BRANCH, token=tokens) is None
    sha = commit_files(work, BRANCH, {"requirements.txt": "torch==2.4.0\n"}, refresh_message(), BOT)
    push_branch(work, BRANCH, token=tokens, force=False, expected_remote_sha=None)
    again = clone(fake.clone_url(REPO), tmp_path / "again", token=tokens)
    assert fetch_branch(again, BRANCH, token=tokens) == sha
    assert bot_owns_branch(again, BRANCH, BOT)

    pushed = fake.log(REPO, BRANCH)[0]
    assert pushed.author == pushed.committer == Person(BOT.name, BOT.email)
    assert fake.read_bytes(REPO, "requirements.txt", BRANCH) == b"torch==2.4.0\n"
    assert list(marks.iterdir()) == []
    assert not (hostile / "other.git").exists()
    assert not (hostile / "other.index").exists()
    assert all("x-hostile" not in r.headers for r in fake.requests)
    assert not (work.path / ".git" / "hooks").exists()  # no template was copied
    assert_no_secrets(work.path, tokens.issued)


# -- shallow history ---------------------------------------------------------------------------


def person_env(who: tuple[str, str]) -> dict[str, str]:
    name, email = who
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def _commit(repo: Path, message: str, who: tuple[str, str]) -> None:
    run_git("commit", "--quiet", "--allow-empty", "-m", message, cwd=repo, env=person_env(who))


@pytest.fixture(scope="module")
def deep_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository whose bot branches forked long before the tip of main.

    * ``lockwarden/deep``: two bot commits on main~20;
    * ``lockwarden/mixed``: a human commit, then a bot commit, on main~20;
    * ``lockwarden/merged``: a bot commit merged into main, which then moved on 5 commits.
    """
    bot = (BOT.name, BOT.email)
    tmp_path = tmp_path_factory.mktemp("deep")
    source = tmp_path / "source"
    source.mkdir()
    run_git("init", "--quiet", "--initial-branch=main", cwd=source)
    for number in range(25):
        _commit(source, f"main {number}", HUMAN)
    run_git("checkout", "--quiet", "-b", "lockwarden/deep", "main~20", cwd=source)
    _commit(source, "Refresh locks 1", bot)
    _commit(source, "Refresh locks 2", bot)
    run_git("checkout", "--quiet", "-b", "lockwarden/mixed", "main~20", cwd=source)
    _commit(source, "Pin torch by hand", HUMAN)
    _commit(source, "Refresh locks", bot)
    run_git("checkout", "--quiet", "-b", "lockwarden/merged", "main~3", cwd=source)
    _commit(source, "Refresh locks", bot)
    run_git("checkout", "--quiet", "main", cwd=source)
    merge = ["merge", "--quiet", "--no-ff", "-m", "Merge", "lockwarden/merged"]
    run_git(*merge, cwd=source, env=person_env(HUMAN))
    for number in range(5):
        _commit(source, f"after {number}", HUMAN)
    bare = tmp_path / "acme" / "deep.git"
    run_git("clone", "--quiet", "--bare", str(source), str(bare), cwd=tmp_path)
    return bare


@pytest.fixture
def deep_remote(deep_template: Path, tmp_path: Path) -> Path:
    """A copy of ``deep_template`` that a test may change."""
    return Path(shutil.copytree(deep_template, tmp_path / "acme" / "deep.git"))


@pytest.mark.parametrize(
    ("branch", "owned"),
    [("lockwarden/deep", True), ("lockwarden/mixed", False), ("lockwarden/merged", True)],
)
def test_a_shallow_clone_decides_ownership_as_a_full_one_does(
    deep_remote: Path, tmp_path: Path, branch: str, owned: bool
) -> None:
    url = f"file://{deep_remote}"
    full = clone(url, tmp_path / "full", token=None, depth=None)
    shallow = clone(url, tmp_path / "shallow", token=None, depth=3)

    for work in (full, shallow):
        assert fetch_branch(work, branch, token=None) == run_git(
            "rev-parse", branch, cwd=deep_remote
        )
        assert bot_owns_branch(work, branch, BOT) is owned
    # The shallow clone fetched the branch's own commits, not the history under them.
    assert int(run_git("rev-list", "--count", "--all", cwd=shallow.path)) <= 6


def test_a_server_that_cannot_exclude_makes_the_clone_whole(
    deep_remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the server's refusal to exclude were worded in a way we do not know.
    monkeypatch.setattr(bot_git, "_NOTHING_TO_EXCLUDE", "words no git prints")
    work = clone(f"file://{deep_remote}", tmp_path / "work", token=None, depth=3)
    assert fetch_branch(work, "lockwarden/merged", token=None) is not None
    assert bot_owns_branch(work, "lockwarden/merged", BOT)
    assert not (work.path / ".git" / "shallow").exists()


def test_fetch_branch_of_an_absent_branch_forgets_a_stale_one(
    deep_remote: Path, tmp_path: Path
) -> None:
    work = clone(f"file://{deep_remote}", tmp_path / "work", token=None, depth=3)
    assert fetch_branch(work, "lockwarden/deep", token=None) is not None
    run_git("update-ref", "-d", "refs/heads/lockwarden/deep", cwd=deep_remote)
    assert fetch_branch(work, "lockwarden/deep", token=None) is None
    with pytest.raises(GitError):
        bot_owns_branch(work, "lockwarden/deep", BOT)


# -- files -------------------------------------------------------------------------------------


@pytest.fixture
def local(deep_remote: Path, tmp_path: Path) -> Clone:
    return clone(f"file://{deep_remote}", tmp_path / "work", token=None, depth=3)


def test_commit_files_resets_the_branch_at_its_parent(local: Clone) -> None:
    first = commit_files(local, BRANCH, {"a.txt": "1\n"}, "one\n", BOT)
    second = commit_files(local, BRANCH, {"b.txt": "2\n"}, "two\n", BOT)
    assert run_git("rev-parse", f"{second}^", cwd=local.path) == local.base_sha
    assert not (local.path / "a.txt").exists()  # the reset dropped the first commit's files
    third = commit_files(local, BRANCH, {"c.txt": "3\n"}, "three\n", BOT, parent=first)
    assert run_git("rev-parse", f"{third}^", cwd=local.path) == first
    assert run_git("rev-parse", "--abbrev-ref", "HEAD", cwd=local.path) == BRANCH

    with pytest.raises(GitError, match="nothing to commit"):
        commit_files(local, BRANCH, {"c.txt": "3\n"}, "again\n", BOT, parent=third)
    empty = commit_files(local, BRANCH, {}, "empty\n", BOT, parent=third, allow_empty=True)
    assert run_git("rev-parse", f"{empty}^", cwd=local.path) == third
    with pytest.raises(GitError, match="no such commit"):
        commit_files(local, BRANCH, {"d.txt": "4\n"}, "four\n", BOT, parent="--output=/tmp/x")
    with pytest.raises(GitError, match="no files"):
        commit_files(local, BRANCH, {}, "nothing\n", BOT)
    (local.path / "sub").mkdir()
    with pytest.raises(GitError, match="it is a folder"):
        commit_files(local, BRANCH, {"sub": "x\n"}, "x\n", BOT)
    with pytest.raises(GitError, match="no local branch"):
        push_branch(local, "lockwarden/never", token=None, force=False, expected_remote_sha=None)


def test_hooks_in_the_clone_never_run(local: Clone, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    hooks = local.path / ".git" / "hooks"
    hooks.mkdir()
    for hook in (
        "pre-commit",
        "commit-msg",
        "post-checkout",
        "post-commit",
        "reference-transaction",
    ):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marks}/{hook}\n")
        (hooks / hook).chmod(0o755)
    commit_files(local, BRANCH, {"a.txt": "1\n"}, "one\n", BOT)
    assert list(marks.iterdir()) == []


def test_commit_files_takes_names_literally(local: Clone) -> None:
    (local.path / "locks").mkdir()
    (local.path / "locks" / "reqg.txt").write_text("untracked, matches the glob\n")
    sha = commit_files(local, BRANCH, {"locks/req[gpu].txt": "torch\n"}, "gpu\n", BOT)
    changed = run_git("show", "--name-only", "--format=", sha, cwd=local.path)
    assert changed.splitlines() == ["locks/req[gpu].txt"]


@pytest.mark.parametrize(
    "name",
    ["", "/etc/passwd", "../outside.txt", "a/../../x", ".git/config", "sub/.GIT/x", "a//b", "./a"],
)
def test_commit_files_refuses_paths_outside_the_tree(local: Clone, name: str) -> None:
    with pytest.raises(GitError, match="refusing"):
        commit_files(local, BRANCH, {name: "x\n"}, "x\n", BOT)


def test_commit_files_never_writes_through_a_symlink(local: Clone, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    (local.path / "link").symlink_to(outside)
    with pytest.raises(GitError, match="refusing"):
        commit_files(local, BRANCH, {"link/victim.txt": "owned\n"}, "x\n", BOT)

    (local.path / "lock.txt").symlink_to(outside / "victim.txt")
    commit_files(local, BRANCH, {"lock.txt": "torch==2.4.0\n"}, "x\n", BOT)
    assert (outside / "victim.txt").read_text() == "precious\n"
    assert not (local.path / "lock.txt").is_symlink()
    assert (local.path / "lock.txt").read_text() == "torch==2.4.0\n"


# -- a person's working tree ----------------------------------------------------------------


def test_a_working_tree_reports_uncommitted_work_and_resolves_any_revision(
    tmp_path: Path,
) -> None:
    run_git("init", "-q", "-b", "main", cwd=tmp_path)
    run_git("config", "user.name", HUMAN[0], cwd=tmp_path)
    run_git("config", "user.email", HUMAN[1], cwd=tmp_path)
    assert bot_git.resolve_revision(tmp_path, "HEAD") is None  # no commits yet
    (tmp_path / "sub").mkdir()
    for name, text in {"sub/a.txt": "a\n", "sub/b.txt": "b\n", "sub/c.txt": "c\n"}.items():
        (tmp_path / name).write_text(text)
    run_git("add", "sub/a.txt", "sub/b.txt", cwd=tmp_path)
    run_git("commit", "-q", "-m", "one", cwd=tmp_path)
    run_git("commit", "-q", "--allow-empty", "-m", "two", cwd=tmp_path)
    first = run_git("rev-parse", "HEAD~1", cwd=tmp_path)
    (tmp_path / "sub/a.txt").write_text("edited\n")
    (tmp_path / "sub/b.txt").write_text("staged\n")
    run_git("add", "sub/b.txt", cwd=tmp_path)

    # asked about from a folder of the repository, paths relative to that folder
    changes = bot_git.uncommitted(tmp_path / "sub", ["a.txt", "b.txt", "c.txt", "d.txt"])

    assert [(c.path, c.staged, c.untracked) for c in changes] == [
        ("a.txt", False, False),
        ("b.txt", True, False),
        ("c.txt", False, True),
    ]
    for rev in ("HEAD~1", "HEAD^", "main~1", first[:10]):
        assert bot_git.resolve_revision(tmp_path, rev) == first
    for rev in ("HEAD~5", "--all", "HEAD:sub/a.txt", ""):
        assert bot_git.resolve_revision(tmp_path, rev) is None
    assert bot_git.staged_paths(tmp_path) == ("sub/b.txt",)
    assert bot_git.person_identity(tmp_path) == BotIdentity(*HUMAN)
    with pytest.raises(GitError, match=r"other changes are staged: sub/b\.txt"):
        bot_git.commit_worktree(tmp_path / "sub", ["a.txt"], "msg\n", BotIdentity(*HUMAN))
    assert bot_git.uncommitted(tmp_path.parent / "elsewhere-not-a-repo", ["x"]) == ()


def test_a_person_without_a_git_identity_is_told_how_to_set_it(tmp_path: Path) -> None:
    run_git("init", "-q", cwd=tmp_path)
    with pytest.raises(GitError, match=r"git config user\.name"):
        bot_git.person_identity(tmp_path)
