"""The ledger: trailers written on bot commits and read back from ``git log``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.errors import LockwardenError
from bot.ledger import (
    LockRecord,
    commit_message,
    lock_sha256,
    parse_trailers,
    read_ledger,
    trailers,
)

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Lockwarden",
    "GIT_AUTHOR_EMAIL": "bot@example.com",
    "GIT_COMMITTER_NAME": "Lockwarden",
    "GIT_COMMITTER_EMAIL": "bot@example.com",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout


def commit(root: Path, message: str, name: str = "f.txt") -> None:
    (root / name).write_text(message)
    git(root, "add", name)
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "initial commit by a person")
    return tmp_path


SERVE = LockRecord("serve", "requirements/serve.txt", "numpy==1.0\n", "sha256:aa", "passed")
DEV = LockRecord("dev", "requirements/dev.txt", "pytest==8.0\n", None, "failed")


def test_trailers_are_stable_and_complete() -> None:
    assert trailers("full", [SERVE, DEV]) == [
        ("Lockwarden-Mode", "full"),
        ("Lockwarden-Env", f"serve requirements/serve.txt {lock_sha256(SERVE.text)}"),
        ("Lockwarden-Env", f"dev requirements/dev.txt {lock_sha256(DEV.text)}"),
        ("Lockwarden-Digest-serve", "sha256:aa"),
        ("Lockwarden-Tests", "serve=passed, dev=failed"),
    ]


def test_commit_message_rejects_multiline_trailers() -> None:
    with pytest.raises(LockwardenError, match="cannot span lines"):
        commit_message("s", "", [("Lockwarden-Mode", "a\nb")])


@pytest.mark.parametrize(
    ("statuses", "known_good"),
    [
        pytest.param(("passed", "passed"), True, id="all-passed"),
        pytest.param(("passed", "skipped"), True, id="skipped-counts-as-passing"),
        pytest.param(("passed", "failed"), False, id="one-failed"),
        pytest.param(("timed-out", "passed"), False, id="timed-out"),
    ],
)
def test_history_reads_back_what_was_written(
    repo: Path, statuses: tuple[str, str], known_good: bool
) -> None:
    records = [
        LockRecord("serve", "requirements/serve.txt", "a\n", "sha256:11", statuses[0]),
        LockRecord("dev", "requirements/dev.txt", "b\n", None, statuses[1]),
    ]
    commit(repo, commit_message("Refresh locks: serve, dev", "body", trailers("full", records)))
    commit(repo, "a human commit afterwards", name="g.txt")

    entries = read_ledger(repo)

    assert len(entries) == 1
    entry = entries[0]
    assert entry.subject == "Refresh locks: serve, dev"
    assert entry.mode == "full"
    assert [(e.name, e.lock, e.digest, e.tests) for e in entry.environments] == [
        ("serve", "requirements/serve.txt", "sha256:11", statuses[0]),
        ("dev", "requirements/dev.txt", None, statuses[1]),
    ]
    assert entry.environments[0].lock_sha256 == lock_sha256("a\n")
    assert entry.known_good is known_good


def test_commits_without_ledger_trailers_are_not_entries() -> None:
    assert parse_trailers("c", "d", "s", "Signed-off-by: A <a@example.com>") is None
    assert parse_trailers("c", "d", "s", "Lockwarden-Env: malformed") is not None


def test_read_ledger_of_a_non_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LockwardenError, match="is not in a git repository"):
        read_ledger(tmp_path)


def test_history_without_commits_says_so(tmp_path: Path) -> None:
    fresh, elsewhere = tmp_path / "fresh", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(["git", "init", "-q", str(fresh)], env=GIT_ENV, check=True)
    runner = CliRunner()

    empty = runner.invoke(main, ["history", str(fresh)])
    outside = runner.invoke(main, ["history", str(elsewhere)])

    assert read_ledger(fresh) == []
    assert empty.exit_code == 0, empty.output
    assert empty.output.startswith("no commits yet")
    assert "fatal" not in empty.output
    assert outside.exit_code == 2
    assert "is not in a git repository" in outside.output
    assert "fatal" not in outside.output


def test_history_command(repo: Path) -> None:
    commit(repo, commit_message("Refresh locks: serve", "", trailers("minimal", [SERVE])))
    runner = CliRunner()

    text = runner.invoke(main, ["history", str(repo)])
    as_json = runner.invoke(main, ["history", str(repo), "--json"])

    assert text.exit_code == 0, text.output
    assert "known-good" in text.output
    assert "serve" in text.output
    data = json.loads(as_json.output)
    assert data[0]["known_good"] is True
    assert data[0]["environments"][0]["digest"] == "sha256:aa"


def test_history_command_without_entries_and_on_errors(repo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["history", str(repo)])
    assert empty.exit_code == 0
    assert "no Lockwarden commits" in empty.output
    broken = runner.invoke(main, ["history", str(repo), "--ref", "no-such-ref"])
    assert broken.exit_code == 2
    assert "'no-such-ref' names no commit here" in broken.output
    back = runner.invoke(main, ["history", str(repo), "--ref", "main~0"])
    assert back.exit_code == 0, back.output
