"""Checkout: a Job becomes a Workspace. Locally that is a working tree; every compile runs
in a staging copy of it, so the tree is only touched when the results are written."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bot import shell
from bot.errors import LockwardenError, ToolNotFoundError
from bot.paths import PathEscapeError, resolve_inside

log = logging.getLogger(__name__)

# Never copied into a staging tree: large, generated, or the tool's own business.
_SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".lockwarden-cache",
    }
)


@dataclass(frozen=True)
class Workspace:
    root: Path
    """The working tree (absolute)."""
    repo: str
    """``owner/name`` for GitHub jobs; the directory name for a local tree."""


def open_local(path: Path) -> Workspace:
    root = path.resolve()
    if not root.is_dir():
        raise LockwardenError(f"{path}: not a directory; pass the repository's root")
    return Workspace(root=root, repo=root.name)


@contextmanager
def staging_copy(workspace: Workspace) -> Iterator[Path]:
    """A throwaway copy of the tree: git-tracked and untracked-but-not-ignored files when
    it is a git checkout, else everything but caches and virtualenvs."""
    with tempfile.TemporaryDirectory(prefix="lockwarden-stage-") as tmp:
        stage = Path(tmp) / workspace.root.name
        stage.mkdir()
        for relative in _files_to_stage(workspace.root):
            source = workspace.root / relative
            target = stage / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                _stage_link(workspace.root, relative, target)
            elif source.is_file():
                shutil.copy2(source, target)
        yield stage


def _stage_link(root: Path, relative: str, target: Path) -> None:
    """Re-create an in-tree symlink in the staging tree as a relative link to the same file;
    a link that leads outside the tree is left out (every path that goes through it is
    refused later with the link named), so nothing in the staging tree points outside."""
    try:
        real = resolve_inside(root, relative, source=relative)
    except PathEscapeError as exc:
        log.warning("not staged: %s", exc.user_message)
        return
    real_root = root.resolve()
    # The link's own directory is a real one (git and os.walk never list a path through a
    # symlinked directory), so a path relative to it stays inside the staging tree.
    here = real_root / PurePosixPath(relative).parent
    target.symlink_to(os.path.relpath(real, here))


def _files_to_stage(root: Path) -> list[str]:
    if (root / ".git").exists():
        try:
            result = shell.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=root,
                env={"PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_CONFIG_NOSYSTEM": "1"},
                timeout_s=120,
            )
        except ToolNotFoundError:
            result = None
        if result is not None and result.ok:
            return [name for name in result.stdout.split("\0") if name]
    files: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        here = Path(directory)
        # os.walk lists a symlink to a directory among dirnames and does not enter it.
        links = [d for d in dirnames if (here / d).is_symlink()]
        files.extend(str((here / f).relative_to(root)) for f in [*filenames, *links])
    return files
