"""``lockwarden run --commit`` and ``--force``: a run commits exactly the files it changed with
the ledger trailers, as the person, so ``history`` and ``rollback --to known-good`` see it;
and no run writes over a person's uncommitted work unless told to. Compiles run for real
against the local index, in a real git repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from tests.pipeline.conftest import Repo, env_config, new_repo
from tests.support.index_server import PackageIndex

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
LOCK = "requirements/serve.txt"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def lockwarden(repo: Repo, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        [*args, str(repo.root)],
        env={"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)},
        catch_exceptions=False,
    )


@pytest.fixture
def repo(tmp_path: Path, package_index: PackageIndex) -> Repo:
    """A committed repository with one pip-tools environment (beta 1.0.0 published) and the
    person's identity in its git config."""
    package_index.publish("beta", "1.0.0")
    repo = new_repo(tmp_path, package_index)
    repo.spec("serve", "beta")
    repo.configure(env_config("serve", backend="pip-tools"))
    git(repo.root, "init", "-q", "-b", "main")
    git(repo.root, "config", "user.name", "Alice Example")
    git(repo.root, "config", "user.email", "alice@example.com")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "Start")
    return repo


@pytest.mark.slow
def test_run_commit_feeds_history_and_known_good_rollback(
    repo: Repo, package_index: PackageIndex
) -> None:
    done = lockwarden(repo, "run", "--no-build", "--commit")
    assert done.exit_code == 0, done.output
    first = git(repo.root, "rev-parse", "HEAD")
    assert f"Committed the changed files as {first[:12]}" in done.output
    assert git(repo.root, "show", "--name-only", "--format=", "HEAD") == LOCK
    assert git(repo.root, "log", "-1", "--format=%an <%ae>|%cn") == (
        "Alice Example <alice@example.com>|Alice Example"
    )
    assert f"Lockwarden-Env: serve {LOCK} sha256:" in git(repo.root, "log", "-1", "--format=%B")

    package_index.publish("beta", "2.0.0")
    done = lockwarden(repo, "run", "--no-build", "--upgrade", "--commit")
    assert done.exit_code == 0, done.output
    second = git(repo.root, "rev-parse", "HEAD")
    assert git(repo.root, "rev-parse", "HEAD~1") == first
    assert git(repo.root, "status", "--porcelain") == ""

    history = lockwarden(repo, "history")
    assert history.exit_code == 0, history.output
    listed = [line.split()[0] for line in history.output.splitlines() if line[:1] != " "]
    assert listed == [second[:12], first[:12]]
    assert history.output.count("known-good") == 2

    back = lockwarden(repo, "rollback", "--to", "known-good", "--no-build")
    assert back.exit_code == 0, back.output
    assert f"Restored the locks of known-good ({first[:12]})" in back.output
    assert "beta==1.0.0" in repo.lock_text("serve")
    assert git(repo.root, "status", "--porcelain") == f"M {LOCK}"


@pytest.mark.slow
def test_run_commit_without_changes_makes_no_commit(repo: Repo) -> None:
    assert lockwarden(repo, "run", "--no-build", "--commit").exit_code == 0
    head = git(repo.root, "rev-parse", "HEAD")

    again = lockwarden(repo, "run", "--no-build", "--commit")

    assert again.exit_code == 0, again.output
    assert "Nothing changed: no commit made." in again.output
    assert git(repo.root, "rev-parse", "HEAD") == head


def test_run_commit_refuses_other_staged_changes(repo: Repo) -> None:
    repo.write("notes.txt", "a person's staged work\n")
    git(repo.root, "add", "notes.txt")
    head = git(repo.root, "rev-parse", "HEAD")

    done = lockwarden(repo, "run", "--no-build", "--commit")

    assert done.exit_code == 2, done.output
    assert "changes already staged: notes.txt" in done.output
    assert "git restore --staged" in done.output
    assert git(repo.root, "rev-parse", "HEAD") == head
    assert not repo.lock_path("serve").exists()  # refused before anything ran
    assert git(repo.root, "diff", "--cached", "--name-only") == "notes.txt"


def test_run_commit_and_dry_run_cannot_be_combined(repo: Repo) -> None:
    done = lockwarden(repo, "run", "--dry-run", "--commit")
    assert done.exit_code == 2
    assert "--commit and --dry-run cannot be combined" in done.output


@pytest.mark.slow
def test_run_refuses_to_overwrite_uncommitted_work_unless_forced(
    repo: Repo, package_index: PackageIndex
) -> None:
    assert lockwarden(repo, "run", "--no-build", "--commit").exit_code == 0
    package_index.publish("beta", "2.0.0")
    edited = repo.lock_text("serve") + "# a person's note\n"
    repo.write(LOCK, edited)

    refused = lockwarden(repo, "run", "--no-build", "--upgrade")

    assert refused.exit_code == 2, refused.output
    assert f"uncommitted changes to {LOCK} (modified)" in refused.output
    assert "pass --force" in refused.output
    assert repo.lock_text("serve") == edited

    forced = lockwarden(repo, "run", "--no-build", "--upgrade", "--force")

    assert forced.exit_code == 0, forced.output
    assert "beta==2.0.0" in repo.lock_text("serve")
    # still uncommitted, but a run that leaves the lock as it is has nothing to refuse
    unchanged = lockwarden(repo, "run", "--no-build")
    assert unchanged.exit_code == 0, unchanged.output
    assert "beta==2.0.0" in repo.lock_text("serve")


@pytest.mark.slow
def test_run_refuses_to_overwrite_an_untracked_file(
    repo: Repo, package_index: PackageIndex
) -> None:
    repo.write(LOCK, "beta==1.0.0\n")  # a person's hand-made lock, never added
    package_index.publish("beta", "2.0.0")

    refused = lockwarden(repo, "run", "--no-build", "--upgrade")

    assert refused.exit_code == 2, refused.output
    assert f"uncommitted changes to {LOCK} (untracked)" in refused.output
    assert repo.lock_text("serve") == "beta==1.0.0\n"
