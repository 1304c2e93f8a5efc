"""Rollback targets (a ref, or the newest known-good ledger entry) and ``lockwarden rollback``:
locally it restores the locks in place; with ``--repo`` the App opens a rollback PR."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import load_config
from bot.errors import LockwardenError
from bot.jobs.branches import REFRESH_BRANCH, ROLLBACK_BRANCH, RollbackRequest
from bot.jobs.queue import JobRequest
from bot.ledger import LockRecord, commit_message, trailers
from bot.rollback import check_ref, local_ref, resolve_rollback
from tests.pipeline.conftest import Repo, env_config, new_repo
from tests.support.fake_github import FakeGitHub
from tests.support.github_app import Bot
from tests.support.index_server import PackageIndex

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def lockwarden(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def commit_locks(repo: Repo, subject: str, tests: str | None = "passed") -> str:
    """Commit everything with ledger trailers for the serve lock, as a merged refresh."""
    text = repo.lock_text("serve")
    record = LockRecord("serve", "requirements/serve.txt", text, "sha256:" + "ab" * 32, tests)
    git(repo.root, "add", "-A")
    message = commit_message(subject, "", trailers("full", [record]))
    git(repo.root, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo.root, "rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path: Path, package_index: PackageIndex) -> tuple[Repo, str, str]:
    """A repository whose serve lock went beta 1.0.0 (known-good) -> 2.0.0 (known-good)."""
    package_index.publish("beta", "1.0.0")
    repo = new_repo(tmp_path, package_index)
    repo.spec("serve", "beta")
    repo.configure(env_config("serve", backend="pip-tools"))
    git(repo.root, "init", "-q", "-b", "main")
    cache = {"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)}
    assert lockwarden("run", "--no-build", str(repo.root), env=cache).exit_code == 0
    first = commit_locks(repo, "Refresh locks: serve")
    package_index.publish("beta", "2.0.0")
    done = lockwarden("run", "--no-build", "--upgrade", str(repo.root), env=cache)
    assert done.exit_code == 0, done.output
    second = commit_locks(repo, "Refresh locks: serve")
    assert "beta==2.0.0" in repo.lock_text("serve")
    return repo, first, second


@pytest.mark.slow
def test_known_good_is_the_newest_set_that_differs_from_the_current_locks(
    history: tuple[Repo, str, str],
) -> None:
    repo, first, _ = history
    config = load_config(repo.root).config
    target = resolve_rollback(repo.root, "known-good", config, resolve_ref=local_ref(repo.root))
    assert target.sha == first
    assert "beta==1.0.0" in target.locks["requirements/serve.txt"]
    assert target.digests == {"serve": "sha256:" + "ab" * 32}
    assert target.entry is None or target.entry.commit == first


@pytest.mark.slow
def test_cli_restores_the_locks_in_place_and_names_the_digests(
    history: tuple[Repo, str, str],
) -> None:
    repo, first, _ = history
    env = {"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)}
    result = lockwarden("rollback", "--to", "known-good", "--no-build", str(repo.root), env=env)
    assert result.exit_code == 0, result.output
    assert f"Restored the locks of known-good ({first[:12]})" in result.output
    assert "serve: sha256:" + "ab" * 32 in result.output
    assert "beta==1.0.0" in repo.lock_text("serve")
    assert repo.lock_text("serve") == git(repo.root, "show", f"{first}:requirements/serve.txt") + (
        "\n"
    )

    # a ref works too (--force: the rollback above is uncommitted work now); an unknown one
    # and a malformed one are refused with exit 2
    args = ("rollback", "--to", "HEAD", "--no-build", "--force", str(repo.root))
    result = lockwarden(*args, env=env)
    assert result.exit_code == 0, result.output
    assert "beta==2.0.0" in repo.lock_text("serve")
    for bad, said in (
        ("no-such-branch", "'no-such-branch' names no commit in this repository"),
        ("HEAD~9", "'HEAD~9' names no commit"),
        ("--upload-pack=x", "not a git revision"),
    ):
        result = lockwarden("rollback", "--to", bad, "--no-build", str(repo.root), env=env)
        assert result.exit_code == 2
        assert said in result.output
        assert "beta==2.0.0" in repo.lock_text("serve")


@pytest.mark.slow
@pytest.mark.parametrize("rev", ["HEAD~1", "HEAD^", "main~1"])
def test_any_git_revision_is_a_rollback_target(history: tuple[Repo, str, str], rev: str) -> None:
    repo, first, _ = history
    env = {"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)}

    result = lockwarden("rollback", "--to", rev, "--no-build", str(repo.root), env=env)

    assert result.exit_code == 0, result.output
    assert f"Restored the locks of {rev} ({first[:12]})" in result.output
    assert "Restored files: requirements/serve.txt" in result.output
    assert "beta==1.0.0" in repo.lock_text("serve")


@pytest.mark.slow
def test_rollback_refuses_to_overwrite_uncommitted_work_without_force(
    history: tuple[Repo, str, str],
) -> None:
    repo, _, second = history
    env = {"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)}
    edited = repo.lock_text("serve") + "# a person's edit\n"
    repo.write("requirements/serve.txt", edited)
    for staged in (False, True):
        if staged:
            git(repo.root, "add", "requirements/serve.txt")
        result = lockwarden("rollback", "--to", "known-good", "--no-build", str(repo.root), env=env)
        assert result.exit_code == 2, result.output
        state = "staged" if staged else "modified"
        assert f"uncommitted changes to requirements/serve.txt ({state})" in result.output
        assert "--force" in result.output
        assert repo.lock_text("serve") == edited  # nothing written

    result = lockwarden(
        "rollback", "--to", "known-good", "--no-build", "--force", str(repo.root), env=env
    )

    assert result.exit_code == 0, result.output
    # the edited lock differs from the newest known-good set, which is restored over it
    assert f"({second[:12]})" in result.output
    assert repo.lock_text("serve") == git(repo.root, "show", f"{second}:requirements/serve.txt") + (
        "\n"
    )


def test_known_good_needs_a_passing_entry(tmp_path: Path, package_index: PackageIndex) -> None:
    package_index.publish("beta", "1.0.0")
    repo = new_repo(tmp_path, package_index)
    repo.spec("serve", "beta")
    repo.write("requirements/serve.txt", "beta==1.0.0\n")
    repo.configure(env_config("serve"))
    git(repo.root, "init", "-q", "-b", "main")
    commit_locks(repo, "Refresh locks: serve", tests="failed")
    config = load_config(repo.root).config
    with pytest.raises(LockwardenError, match="no known-good set yet"):
        resolve_rollback(repo.root, "known-good", config, resolve_ref=local_ref(repo.root))
    # the only known-good set is the current one: nothing to roll back to
    repo.write("requirements/serve.txt", "beta==1.0.0\n")
    commit_locks(repo, "Refresh locks: serve", tests="passed")
    with pytest.raises(LockwardenError, match="already match every known-good set"):
        resolve_rollback(repo.root, "known-good", config, resolve_ref=local_ref(repo.root))
    # a commit without the locks
    empty_tree = git(repo.root, "hash-object", "-t", "tree", "/dev/null")
    empty = git(repo.root, "commit-tree", empty_tree, "-m", "empty")
    git(repo.root, "branch", "empty", empty)
    with pytest.raises(LockwardenError, match="has none of the locks"):
        resolve_rollback(repo.root, "empty", config, resolve_ref=local_ref(repo.root))
    assert local_ref(repo.root)(empty[:10]) == empty


@pytest.mark.parametrize("ref", ["-x", "--upload-pack=x", "a b", "", "x" * 201, "a\nb", "a\x00"])
def test_revisions_git_could_take_for_something_else_are_refused(ref: str) -> None:
    with pytest.raises(LockwardenError, match="not a git revision"):
        check_ref(ref)


@pytest.mark.parametrize(
    "ref",
    ["known-good", "main", "v1.2.0", "release/2026-11", "a1b2c3d", "HEAD~1", "HEAD^", "main~2"],
)
def test_revisions_are_accepted(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.slow
def test_cli_opens_the_rollback_pull_request_through_the_app(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.publish("beta", "1.0.0")
    with FakeGitHub(tmp_path / "github") as fake:
        installation = fake.create_installation("acme")
        fake.create_repo(
            "acme/svc",
            files={
                "requirements/serve.in": f"--index-url {package_index.url}\nbeta\n",
                # Listed: discovery proposes only specs that already have a lock.
                ".github/lockwarden.yml": (
                    "environments:\n  - name: serve\n    spec: requirements/serve.in\n"
                ),
            },
            installation=installation,
        )
        bot = Bot(fake, tmp_path / "cache")
        bot.run_all(bot.deliver("push", fake.payload("push", repo="acme/svc")))
        first = next(p for p in fake.pulls("acme/svc") if p.head == REFRESH_BRANCH)
        good = fake.merge_pull("acme/svc", first.number, method="squash")
        fake.push_files("acme/svc", {"requirements/serve.txt": "beta==1.0.0\n"})

        env = {
            "LOCKWARDEN_APP_ID": str(fake.app_id),
            "LOCKWARDEN_PRIVATE_KEY": fake.private_key_pem,
            "LOCKWARDEN_GITHUB_API_URL": fake.api_url,
            "LOCKWARDEN_CACHE_DIR": str(tmp_path / "cache"),
            "LOCKWARDEN_BUILDER": "none",
        }
        result = lockwarden("rollback", "--to", good[:12], "--repo", "acme/svc", env=env)
        assert result.exit_code == 0, result.output
        rollback = [p for p in fake.pulls("acme/svc", state="open") if p.head == ROLLBACK_BRANCH]
        assert len(rollback) == 1
        assert f"/pull/{rollback[0].number} (opened)" in result.output
        lock = fake.read_file("acme/svc", "requirements/serve.txt", ref=ROLLBACK_BRANCH)
        assert lock == fake.read_file("acme/svc", "requirements/serve.txt", ref=good)

        result = lockwarden("rollback", "--to", "main", "--repo", "acme/nope", env=env)
        assert result.exit_code == 2
        assert "not installed" in result.output


@pytest.mark.slow
def test_rollback_puts_the_image_pins_back_with_the_locks(
    history: tuple[Repo, str, str],
) -> None:
    repo, first, second = history
    digest_1, digest_2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    repo.configure(env_config("serve", backend="pip-tools", dockerfile="Dockerfile.serve"))
    repo.write(
        "Dockerfile.serve",
        f"FROM python:3.11-slim@{digest_1}\nRUN apt-get install -y libgomp1=12.2-1\n",
    )
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "--amend", "--no-edit")  # the newest set had these pins
    pinned = git(repo.root, "rev-parse", "HEAD")
    repo.write(
        "Dockerfile.serve",
        f"FROM python:3.11-slim@{digest_2}\n# a person's note\n"
        "RUN apt-get install -y libgomp1=12.2-2\n",
    )
    git(repo.root, "commit", "-q", "-am", "Move the image pins")
    env = {"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)}

    result = lockwarden("rollback", "--to", pinned, "--no-build", str(repo.root), env=env)

    assert result.exit_code == 0, result.output
    assert "Restored the image pins of Dockerfile.serve." in result.output
    assert "Restored files: Dockerfile.serve" in result.output
    assert (repo.root / "Dockerfile.serve").read_text() == (
        f"FROM python:3.11-slim@{digest_1}\n# a person's note\n"
        "RUN apt-get install -y libgomp1=12.2-1\n"
    )
    loaded = load_config(repo.root).config
    target = resolve_rollback(repo.root, pinned, loaded, resolve_ref=local_ref(repo.root))
    assert target.dockerfiles == {}  # already restored
    assert first != second


@pytest.mark.slow
def test_rollback_pull_request_restores_the_dockerfile_pins(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.publish("beta", "1.0.0")
    old = "FROM python:3.11-slim@sha256:" + "1" * 64 + "\nRUN apt-get install -y curl=8.0-1\n"
    new = "FROM python:3.11-slim@sha256:" + "2" * 64 + "\nRUN apt-get install -y curl=8.0-2\n"
    with FakeGitHub(tmp_path / "github") as fake:
        installation = fake.create_installation("acme")
        fake.create_repo(
            "acme/svc",
            files={
                "requirements/serve.in": f"--index-url {package_index.url}\nbeta\n",
                "Dockerfile.serve": old,
                ".github/lockwarden.yml": (
                    "environments:\n  - name: serve\n    spec: requirements/serve.in\n"
                    "    dockerfile: Dockerfile.serve\n"
                ),
            },
            installation=installation,
        )
        bot = Bot(fake, tmp_path / "cache")
        bot.run_all(bot.deliver("push", fake.payload("push", repo="acme/svc")))
        first = next(p for p in fake.pulls("acme/svc") if p.head == REFRESH_BRANCH)
        good = fake.merge_pull("acme/svc", first.number, method="squash")
        fake.push_files("acme/svc", {"Dockerfile.serve": new})
        job = JobRequest("refresh", "acme/svc", installation.id, delivery_id="rollback")

        done = bot.runner.rollback(job, RollbackRequest(good[:12]))

        assert done.target.dockerfiles == {"Dockerfile.serve": old}
        assert fake.read_file("acme/svc", "Dockerfile.serve", ref=ROLLBACK_BRANCH) == old
        rollback = [p for p in fake.pulls("acme/svc", state="open") if p.head == ROLLBACK_BRANCH]
        assert len(rollback) == 1
