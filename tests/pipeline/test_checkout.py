"""Checkout: opening a local tree and the staging copy compiles run in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import shell
from bot.errors import LockwardenError, ToolNotFoundError
from bot.pipeline.checkout import Workspace, open_local, staging_copy

GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/nonexistent",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True)


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def staged_files(stage: Path) -> set[str]:
    return {str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file() or p.is_symlink()}


# -- open_local -----------------------------------------------------------------------------


def test_open_local(tmp_path: Path) -> None:
    repo = tmp_path / "ml-service"
    repo.mkdir()
    workspace = open_local(repo / "." / ".." / "ml-service")
    assert workspace == Workspace(root=repo.resolve(), repo="ml-service")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.write_text("x"), id="a-file"),
        pytest.param(lambda p: None, id="missing"),
    ],
)
def test_open_local_needs_a_directory(tmp_path: Path, make: Callable[[Path], object]) -> None:
    path = tmp_path / "thing"
    make(path)
    with pytest.raises(
        LockwardenError, match=r"thing: not a directory; pass the repository's root"
    ):
        open_local(path)


# -- staging_copy: plain directory ----------------------------------------------------------

PLAIN_FILES = {
    "requirements/serve.in": "numpy\n",
    "requirements/serve.txt": "numpy==2.0.0\n",
    "src/app/main.py": "print(1)\n",
    ".github/lockwarden.yml": "environments: []\n",
    ".venv/lib/site.py": "",
    "venv/bin/python": "",
    "src/app/__pycache__/main.cpython-311.pyc": "",
    "node_modules/x/index.js": "",
    ".mypy_cache/x.json": "",
    ".lockwarden-cache/pip/x": "",
}
PLAIN_STAGED = {
    "requirements/serve.in",
    "requirements/serve.txt",
    "src/app/main.py",
    ".github/lockwarden.yml",
}


def test_staging_copy_of_a_plain_directory(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, PLAIN_FILES)
    with staging_copy(open_local(root)) as stage:
        assert stage.name == "repo"
        assert stage != root
        assert staged_files(stage) == PLAIN_STAGED
        assert (stage / "requirements/serve.txt").read_text() == "numpy==2.0.0\n"


def test_staging_copy_falls_back_when_git_cannot_list(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {**PLAIN_FILES, ".git/HEAD": "not a git directory\n"})
    with staging_copy(open_local(root)) as stage:
        assert staged_files(stage) == PLAIN_STAGED


def test_staging_copy_falls_back_when_git_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    write(root, {**PLAIN_FILES, ".git/HEAD": "ref: refs/heads/main\n"})

    def no_git(*_: object, **__: object) -> None:
        raise ToolNotFoundError("'git' was not found; is it installed and on PATH?")

    monkeypatch.setattr(shell, "run", no_git)
    with staging_copy(open_local(root)) as stage:
        assert staged_files(stage) == PLAIN_STAGED


def test_staging_copy_is_independent_and_removed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {"a.txt": "original\n"})
    with staging_copy(open_local(root)) as stage:
        (stage / "a.txt").write_text("changed in stage\n")
        (stage / "new.txt").write_text("new\n")
        parent = stage.parent
    assert (root / "a.txt").read_text() == "original\n"
    assert not (root / "new.txt").exists()
    assert not stage.exists()
    assert not parent.exists()


def test_staging_copy_removed_after_an_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {"a.txt": "x"})
    with pytest.raises(RuntimeError), staging_copy(open_local(root)) as stage:
        raise RuntimeError("compile crashed")
    assert not stage.exists()


def test_staging_copy_keeps_mode(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, {"lock.sh": "#!/bin/sh\n"})
    (root / "lock.sh").chmod(0o755)
    with staging_copy(open_local(root)) as stage:
        assert os.access(stage / "lock.sh", os.X_OK)


@pytest.mark.parametrize("use_git", [False, True], ids=["plain", "git"])
def test_staging_copy_preserves_symlinks(tmp_path: Path, use_git: bool) -> None:
    root = tmp_path / "repo"
    write(root, {"requirements/base.txt": "numpy==2.0.0\n", "shared/common.in": "numpy\n"})
    (root / "constraints.txt").symlink_to("requirements/base.txt")
    (root / "requirements/common").symlink_to("../shared")
    (root / "dangling.in").symlink_to("nowhere.in")
    if use_git:
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    with staging_copy(open_local(root)) as stage:
        assert (stage / "constraints.txt").is_symlink()
        assert os.readlink(stage / "constraints.txt") == "requirements/base.txt"
        assert (stage / "constraints.txt").read_text() == "numpy==2.0.0\n"
        assert (stage / "requirements/common").is_symlink()
        assert os.readlink(stage / "requirements/common") == "../shared"
        assert (stage / "requirements/common/common.in").read_text() == "numpy\n"
        assert os.readlink(stage / "dangling.in") == "nowhere.in"


# -- staging_copy: git checkout -------------------------------------------------------------


def test_staging_copy_of_a_git_checkout(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            ".gitignore": "build/\n*.log\n",
            "requirements/serve.in": "numpy\n",
            "requirements/serve.txt": "numpy==2.0.0\n",
            "space dir/ünï file.in": "x\n",
            "space dir/ünï kept.in": "y\n",
        },
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    write(
        root,
        {
            "requirements/train.in": "torch\n",  # untracked, not ignored
            "build/output.txt": "",  # ignored directory
            "compile.log": "",  # ignored pattern
            "requirements/serve.txt": "numpy==2.1.0\n",  # tracked, modified
        },
    )
    (root / "space dir/ünï file.in").unlink()  # tracked, deleted in the tree
    with staging_copy(open_local(root)) as stage:
        assert staged_files(stage) == {
            ".gitignore",
            "requirements/serve.in",
            "requirements/serve.txt",
            "requirements/train.in",
            "space dir/ünï kept.in",
        }
        assert (stage / "requirements/serve.txt").read_text() == "numpy==2.1.0\n"
        assert not (stage / ".git").exists()
